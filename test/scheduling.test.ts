// Parallel stages, --keep-going, failures that record nothing, shell stages, and one run at a time.

import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { ENGINE, Project } from './rig.ts';

/** Stages that record when they ran: each writes `start end` (ms) to its out after sleeping `ms`. */
function timedStage(name: string, ms: number, deps: string[] = ['data/in.txt']): string {
  return `stage(${JSON.stringify(name)}, {
  deps: ${JSON.stringify(deps)},
  outs: ['out/${name}.txt'],
  async run(ctx) {
    appendFileSync(ctx.path('runs.log'), '${name}\\n');
    const start = Date.now();
    await new Promise((r) => setTimeout(r, ${ms}));
    writeFileSync(ctx.outs[0], start + ' ' + Date.now());
  },
})`;
}

function project(stages: Record<string, string>): Project {
  const names = Object.keys(stages);
  return Project.create({
    'data/in.txt': 'x',
    'pipeline.ts': `import { appendFileSync, writeFileSync } from 'node:fs';
import { definePipeline, runIfMain, stage } from ${JSON.stringify(ENGINE)};
${names.map((n) => `const ${n} = ${stages[n]};`).join('\n')}
const pipeline = definePipeline([${names.join(', ')}]);
export default pipeline;
await runIfMain(import.meta.url, pipeline);
`,
  });
}

const interval = (p: Project, name: string) => p.read(`out/${name}.txt`).split(' ').map(Number);

describe('scheduling', () => {
  const projects: Project[] = [];
  after(() => {
    for (const p of projects) p.remove();
  });

  test('--jobs 2 really overlaps two independent stages; --jobs 1 does not', async () => {
    const p = project({ a: timedStage('a', 1500), b: timedStage('b', 1500) });
    projects.push(p);
    assert.equal((await p.cli('run', '--jobs', '2')).exitCode, 0);
    const [a0, a1] = interval(p, 'a');
    const [b0, b1] = interval(p, 'b');
    assert.ok(a0 < b1 && b0 < a1, `expected overlap: a ${a0}-${a1}, b ${b0}-${b1}`);

    assert.equal((await p.cli('run', '--jobs', '1', '--force')).exitCode, 0);
    const [c0, c1] = interval(p, 'a');
    const [d0, d1] = interval(p, 'b');
    assert.ok(c1 <= d0 || d1 <= c0, `expected no overlap: a ${c0}-${c1}, b ${d0}-${d1}`);
  });

  test('a failure stops the run; --keep-going finishes the independent branch', async () => {
    const p = project({
      bad: `stage('bad', { deps: ['data/in.txt'], outs: ['out/bad.txt'], cmd: 'echo "something broke" >&2; exit 3' })`,
      after_bad: timedStage('after_bad', 0, ['out/bad.txt']),
      good: timedStage('good', 0),
    });
    projects.push(p);
    const r = await p.cli('run', '--jobs', '1');
    assert.equal(r.exitCode, 1);
    assert.match(r.stdout, /bad: stage 'bad' exited with code 3:\nsomething broke/);
    assert.deepEqual(p.runs(), [], 'nothing after the failure starts');
    assert.match(r.stdout, /0 ran, 0 fresh, 1 failed, 2 skipped/);

    const k = await p.cli('run', '--jobs', '1', '--keep-going');
    assert.equal(k.exitCode, 1);
    assert.deepEqual(p.runs(), ['good']);
    assert.match(k.stdout, /after_bad skipped: upstream 'bad' failed/);
    assert.match(k.stdout, /1 ran, 0 fresh, 1 failed, 1 skipped/);
    const s = await p.statusJson();
    assert.deepEqual(
      s.stages.map((x) => [x.name, x.state]),
      [
        ['bad', 'never-run'],
        ['after_bad', 'never-run'],
        ['good', 'fresh'],
      ],
    );
    assert.ok(!p.read('pipeline.lock').includes('bad:'), 'a failed stage has no lock entry');
  });

  test('a crashed stage records nothing and keeps its previous outs', async () => {
    const p = Project.create({
      'data/in.txt': 'x',
      'configs/default.yaml': 'mode: ok\n',
      'pipeline.ts': `import { writeFileSync } from 'node:fs';
import { definePipeline, runIfMain, stage } from ${JSON.stringify(ENGINE)};
const s = stage('s', {
  deps: ['data/in.txt'], outs: ['out/s.txt'], params: ['mode'],
  async run(ctx) {
    writeFileSync(ctx.outs[0], 'partial');
    if (ctx.params.mode === 'throw') throw new Error('model diverged');
    if (ctx.params.mode === 'exit') process.exit(7);
    if (ctx.params.mode === 'kill') process.kill(process.pid, 'SIGKILL');
    if (ctx.params.mode === 'noout') { (await import('node:fs')).rmSync(ctx.outs[0]); return; }
    writeFileSync(ctx.outs[0], 'good');
  },
});
const pipeline = definePipeline([s]);
export default pipeline;
await runIfMain(import.meta.url, pipeline);
`,
    });
    projects.push(p);
    assert.equal((await p.cli('run')).exitCode, 0);
    const lock = p.read('pipeline.lock');
    const cases: Array<[string, RegExp]> = [
      ['throw', /stage 's' threw: model diverged/],
      ['exit', /stage 's' exited with code 7/],
      ['kill', /stage 's' was killed by SIGKILL/],
      ['noout', /stage 's' finished but did not write its declared out\(s\): out\/s\.txt/],
    ];
    for (const [mode, message] of cases) {
      const r = await p.cli('run', '--set', `mode=${mode}`);
      assert.equal(r.exitCode, 1, `${mode}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, message);
      assert.equal(p.read('pipeline.lock'), lock, `${mode}: lock untouched`);
      assert.equal(p.read('out/s.txt'), 'good', `${mode}: previous out restored`);
    }
    const s = await p.statusJson();
    assert.equal(s.stages[0].state, 'fresh');
  });

  test('shell stages get their params interpolated and as PIPELINE_PARAMS', async () => {
    const p = Project.create({
      'data/in.txt': 'x',
      'configs/default.yaml': 'train:\n  lr: 0.001\n  hidden: [4, 2]\n',
      'pipeline.ts': `import { definePipeline, runIfMain, stage } from ${JSON.stringify(ENGINE)};
const sh = stage('sh', {
  deps: ['data/in.txt'], outs: ['out/sh.txt'], params: ['train.lr', 'train.hidden'],
  cmd: 'mkdir -p out && echo "lr=\${train.lr} hidden=\${train.hidden} $PIPELINE_PARAMS" > out/sh.txt',
});
const pipeline = definePipeline([sh]);
export default pipeline;
await runIfMain(import.meta.url, pipeline);
`,
    });
    projects.push(p);
    assert.equal((await p.cli('run', '--set', 'train.lr=0.5')).exitCode, 0);
    assert.equal(p.read('out/sh.txt'), 'lr=0.5 hidden=[4,2] {"train.hidden":[4,2],"train.lr":0.5}\n');
    const s = await p.statusJson();
    assert.deepEqual(s.stages[0].reasons, [
      { kind: 'param', path: 'train.lr', change: 'modified', old: 0.5, new: 0.001 },
    ]);
  });

  test('one run at a time: --no-wait fails, a second run waits, status does not block', async () => {
    // The stage holds the run until the test writes `release`: no race against a timer.
    const gated = `stage('slow', {
  deps: ['data/in.txt'],
  outs: ['out/slow.txt'],
  async run(ctx) {
    appendFileSync(ctx.path('runs.log'), 'slow\\n');
    while (!existsSync(ctx.path('release'))) await new Promise((r) => setTimeout(r, 50));
    writeFileSync(ctx.outs[0], 'done');
  },
})`;
    const p = project({ slow: gated });
    p.write(
      'pipeline.ts',
      p.read('pipeline.ts').replace('import { appendFileSync,', 'import { appendFileSync, existsSync,'),
    );
    projects.push(p);
    const first = p.spawn(['run']);
    // Wait until the first run is inside its stage.
    for (let i = 0; i < 300 && !p.exists('runs.log'); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(p.exists('runs.log'), 'first run started its stage');

    const noWait = await p.cli('run', '--no-wait');
    assert.equal(noWait.exitCode, 2);
    assert.match(noWait.stderr, /another run \(pid \d+\) holds this workspace/);

    // The first run cannot finish before `release`, so an answer here proves status did not wait.
    const status = await p.statusJson();
    assert.equal(status.stages[0].state, 'never-run');

    const second = p.spawn(['run']);
    let out = '';
    second.stdout?.on('data', (d: Buffer) => {
      out += d;
    });
    for (let i = 0; i < 300 && !/waiting/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(out, /another run \(pid \d+\) holds this workspace; waiting/);
    p.write('release', '');
    const r2 = await second;
    assert.equal(r2.exitCode, 0);
    assert.match(String(r2.stdout), /0 ran, 1 fresh/, 'the waiting run found the stage already done');
    assert.equal((await first).exitCode, 0);
    assert.deepEqual(p.runs(), ['slow']);
  });

  test('a persisted out is left in place while its stage runs, and kept when it fails', async () => {
    const p = Project.create({
      'data/in.txt': 'x',
      'configs/default.yaml': 'fail: false\n',
      'pipeline.ts': `import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { definePipeline, runIfMain, stage } from ${JSON.stringify(ENGINE)};
// Adds one file per run to its folder, as a download adds new images.
const grow = stage('grow', {
  deps: ['data/in.txt'], params: ['fail'], outs: [{ path: 'out/items', persist: true }],
  run(ctx) {
    mkdirSync(ctx.outs[0], { recursive: true });
    const n = readdirSync(ctx.outs[0]).length;
    writeFileSync(ctx.outs[0] + '/' + n, String(n));
    if (ctx.params.fail) throw new Error('network went away');
  },
});
const pipeline = definePipeline([grow]);
export default pipeline;
await runIfMain(import.meta.url, pipeline);
`,
    });
    projects.push(p);
    assert.equal((await p.cli('run')).exitCode, 0);
    const failed = await p.cli('run', '--set', 'fail=true');
    assert.equal(failed.exitCode, 1);
    assert.deepEqual(readdirSync(p.path('out/items')).sort(), ['0', '1'], 'the partial progress is kept');
    assert.equal((await p.cli('run', '--set', 'fail=false', '--force')).exitCode, 0);
    assert.deepEqual(readdirSync(p.path('out/items')).sort(), ['0', '1', '2'], 'and continued from');
  });
});
