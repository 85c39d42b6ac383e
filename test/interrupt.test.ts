// Ctrl-C / SIGTERM mid-stage: the stage and its children stop, nothing is recorded, the previous outs
// come back, exit 130; the next run completes. A killed engine is recovered on the next run.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { alive, ENGINE, Project, sleep } from './rig.ts';

async function waitFor(p: Project, rel: string): Promise<void> {
  for (let i = 0; i < 150 && !p.exists(rel); i++) await sleep(100);
  assert.ok(p.exists(rel), `${rel} appeared`);
}

function project(): Project {
  return Project.create({
    'data/in.txt': 'x',
    'configs/default.yaml': 'seconds: 0\n',
    'pipeline.ts': `import { writeFileSync } from 'node:fs';
import { definePipeline, runIfMain, stage } from ${JSON.stringify(ENGINE)};
// A shell stage whose long work happens in a grandchild (sleep), to prove the whole group is stopped.
const sh = stage('sh', {
  deps: ['data/in.txt'], outs: ['out/sh.txt'], params: ['seconds'],
  cmd: 'mkdir -p out && echo partial > out/sh.txt && sleep \${seconds} & echo $! > sleeper.pid; wait; echo done > out/sh.txt',
});
// A TypeScript stage that honours ctx.signal.
const ts = stage('ts', {
  deps: ['data/in.txt'], outs: ['out/ts.txt'], params: ['seconds'],
  async run(ctx) {
    writeFileSync(ctx.outs[0], 'partial');
    writeFileSync(ctx.path('ts.started'), String(process.pid));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, (ctx.params.seconds as number) * 1000);
      ctx.signal.addEventListener('abort', () => { clearTimeout(t); reject(ctx.signal.reason); });
    });
    writeFileSync(ctx.outs[0], 'done');
  },
});
const pipeline = definePipeline([sh, ts]);
export default pipeline;
await runIfMain(import.meta.url, pipeline);
`,
  });
}

describe('interrupt', () => {
  const projects: Project[] = [];
  after(() => {
    for (const p of projects) p.remove();
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    test(`${signal} mid-stage: children stopped, nothing recorded, old outs back, exit 130`, async () => {
      const p = project();
      projects.push(p);
      assert.equal((await p.cli('run')).exitCode, 0);
      const lock = p.read('pipeline.lock');
      assert.equal(p.read('out/sh.txt'), 'done\n');
      p.write('sleeper.pid', '');
      rmSync(p.path('ts.started'));

      const run = p.spawn(['run', '--jobs', '2', '--set', 'seconds=60']);
      await waitFor(p, 'ts.started');
      for (let i = 0; i < 50 && !p.read('sleeper.pid').trim(); i++) await sleep(100);
      const sleeper = Number(p.read('sleeper.pid'));
      const worker = Number(p.read('ts.started'));
      assert.ok(alive(sleeper) && alive(worker), 'both stages are running');

      const t0 = Date.now();
      run.kill(signal);
      const r = await run;
      assert.equal(r.exitCode, 130, String(r.stdout) + String(r.stderr));
      assert.ok(Date.now() - t0 < 8000, 'stopped promptly');
      assert.match(String(r.stdout), /stopping running stages; nothing is recorded for them/);
      assert.match(String(r.stdout), /interrupted: 0 ran/);
      assert.ok(!alive(sleeper), "the shell stage's grandchild was stopped");
      assert.ok(!alive(worker), 'the TypeScript worker was stopped');
      assert.equal(p.read('pipeline.lock'), lock, 'nothing recorded');
      assert.equal(p.read('out/sh.txt'), 'done\n', 'previous out restored');
      assert.equal(p.read('out/ts.txt'), 'done', 'previous out restored');

      // Back where it was: fresh. And a run after the interrupted one completes.
      assert.match((await p.cli('run')).stdout, /0 ran, 2 fresh/);
      const next = await p.cli('run', '--set', 'seconds=1');
      assert.equal(next.exitCode, 0);
      assert.match(next.stdout, /2 ran/);
    });
  }

  test('an engine killed mid-stage (SIGKILL) is recovered by the next run', async () => {
    const p = project();
    projects.push(p);
    assert.equal((await p.cli('run')).exitCode, 0);
    const lock = p.read('pipeline.lock');
    rmSync(p.path('ts.started'));
    const run = p.spawn(['run', 'ts', '--set', 'seconds=60']);
    await waitFor(p, 'ts.started');
    const worker = Number(p.read('ts.started'));
    run.kill('SIGKILL');
    await run;
    process.kill(worker, 'SIGKILL'); // its orphaned worker, as the OS would eventually
    assert.equal(p.read('out/ts.txt'), 'partial', 'the half-written out is what the crash left');
    assert.equal(p.read('pipeline.lock'), lock);

    // The stale lock (its holder is gone) is taken over after a while; the journal restores the old out.
    const s = await p.statusJson();
    assert.equal(s.stages.find((x) => x.name === 'ts')?.reasons[0]?.kind, 'out-modified');
    const next = await p.cli('run', 'ts');
    assert.equal(next.exitCode, 0, next.stderr);
    assert.match(next.stdout, /restored the outs of 'ts' left aside by an interrupted run: out\/ts\.txt/);
    assert.match(next.stdout, /0 ran, 1 fresh/);
    assert.equal(p.read('out/ts.txt'), 'done');
  });
});
