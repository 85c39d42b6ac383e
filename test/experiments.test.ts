// Experiments: `exp run` in a workspace of its own (the project's outs and lock untouched, unchanged
// stages restored from the shared run-cache), sweeps (grid x repeats, parallel, upstream computed once,
// resumable), show / diff / apply, and metrics / params diff against a git revision.
//
// The counting stages here append to $RUNS_LOG (an absolute path in the project), so what ran inside an
// experiment's own workspace is counted too.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { ENGINE, Project, pipelineFile } from './rig.ts';

function countingStage(name: string, def: { deps: string[]; outs: unknown[]; params: string[]; body: string }): string {
  return `import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { stage } from ${JSON.stringify(ENGINE)};
export default stage(${JSON.stringify(name)}, {
  deps: ${JSON.stringify(def.deps)},
  outs: ${JSON.stringify(def.outs)},
  params: ${JSON.stringify(def.params)},
  async run(ctx) {
    appendFileSync(process.env.RUNS_LOG ?? ctx.path('runs.log'), ${JSON.stringify(name)} + '\\n');
    const input = ctx.deps.map((d) => readFileSync(d, 'utf8')).join('|');
    ${def.body}
  },
});
`;
}

const CONFIG = `# the experiment's config
prepare:
  lower: true
train:
  lr: 0.001 # learning rate
  epochs: 3
  seed: 0
`;

/** prepare -> train (train.*) -> evaluate (a metrics out: accuracy = 0.5 + lr, loss = 1 - lr). */
function expProject(): Project {
  const p = Project.create({
    'data/raw.txt': 'Hello World\n',
    'configs/default.yaml': CONFIG,
    'stages/prepare.ts': countingStage('prepare', {
      deps: ['data/raw.txt'],
      outs: ['artifacts/clean.txt'],
      params: ['prepare.lower'],
      body: 'writeFileSync(ctx.outs[0], ctx.params.prepare.lower ? input.toLowerCase() : input);',
    }),
    'stages/train.ts': countingStage('train', {
      deps: ['artifacts/clean.txt'],
      outs: ['artifacts/model.txt'],
      params: ['train.*'],
      // A rate above 0.5 is slow: long enough to be interrupted.
      body: `if (ctx.params.train.lr > 0.5) await new Promise((r) => setTimeout(r, 60_000));
    writeFileSync(ctx.outs[0], input + JSON.stringify(ctx.params));`,
    }),
    'stages/evaluate.ts': countingStage('evaluate', {
      deps: ['artifacts/model.txt'],
      outs: [{ path: 'artifacts/metrics.json', role: 'metrics' }],
      params: ['train.lr'],
      body: `const lr = ctx.params.train.lr;
    writeFileSync(ctx.outs[0], JSON.stringify({ test: { accuracy: 0.5 + lr }, loss: 1 - lr, note: 'text is left out' }));`,
    }),
    'pipeline.ts': pipelineFile(['prepare', 'train', 'evaluate']),
  });
  p.env.RUNS_LOG = p.path('runs.log');
  return p;
}

const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1) as string);
const record = (p: Project, name: string) => JSON.parse(p.read(`.pipeline/experiments/${name}.json`));
const git = (p: Project, ...args: string[]) =>
  execa('git', ['-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args], { cwd: p.dir });

describe('exp run, show, diff, apply; metrics and params diff (a git project)', () => {
  let p: Project;
  before(async () => {
    p = expProject();
    // data/ is ignored by git: a source dep the experiment workspace must still get.
    p.write('.gitignore', 'data/\nartifacts/\n.pipeline/*\n!.pipeline/config.yaml\nruns.log\n');
    await git(p, 'init', '-q');
    const r = await p.cli('run');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(p.runs(), ['evaluate', 'prepare', 'train']);
    await git(p, 'add', '-A');
    await git(p, 'commit', '-qm', 'baseline');
  });
  after(() => p.remove());

  test('exp run leaves the workspace as it was and runs only what the override changes', async () => {
    const lock = p.read('pipeline.lock');
    const metrics = p.read('artifacts/metrics.json');
    const r = await p.cli('exp', 'run', '--set', 'train.lr=0.1', '--name', 'fast', '--json');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(p.runs(), ['evaluate', 'train'], 'prepare is restored, not rerun');
    assert.equal(p.read('pipeline.lock'), lock);
    assert.equal(p.read('artifacts/metrics.json'), metrics);
    assert.ok(!existsSync(p.path('.pipeline/exp/ws-fast')), 'the workspace is removed');

    const done = lastJson(r.stdout);
    assert.equal(done.type, 'exp-done');
    const rec = record(p, 'fast');
    assert.deepEqual(done.record, rec);
    assert.equal(rec.status, 'success');
    assert.deepEqual(rec.overrides, { 'train.lr': 0.1 });
    assert.deepEqual(rec.metrics, { 'test.accuracy': 0.6, loss: 0.9 });
    assert.deepEqual(
      Object.fromEntries(Object.entries(rec.stages).map(([n, s]) => [n, (s as { outcome: string }).outcome])),
      { prepare: 'restored', train: 'ran', evaluate: 'ran' },
    );
    assert.equal(rec.params.train['train.lr'], 0.1);
    assert.equal(rec.params.train['train.epochs'], 3);
    assert.match(rec.stages.evaluate.outs['artifacts/metrics.json'].hash, /^[0-9a-f]{64}$/);
  });

  test('human output: the run as `run` shows it; a generated name; the same overrides again is an error', async () => {
    const r = await p.cli('exp', 'run', '--set', 'train.lr=0.2');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /▶ experiment (exp-[0-9a-f]{7}) train\.lr=0\.2/);
    assert.match(r.stdout, /↺ prepare restored from cache/);
    assert.match(r.stdout, /✓ train/);
    assert.match(r.stdout, /test\.accuracy 0\.7, loss 0\.8/);
    assert.match(r.stdout, /the workspace's outs and pipeline\.lock are unchanged/);
    assert.deepEqual(p.runs(), ['evaluate', 'train']);
    const again = await p.cli('exp', 'run', '--set', 'train.lr=0.2');
    assert.equal(again.exitCode, 2);
    assert.match(again.stderr, /experiment 'exp-[0-9a-f]{7}' exists .*--force/);
  });

  test('an unknown key is refused before anything runs, with the nearest key', async () => {
    const r = await p.cli('exp', 'run', '--set', 'train.lrr=0.3');
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /unknown config key 'train\.lrr'.*Did you mean 'train\.lr'\?/);
    assert.deepEqual(p.runs(), []);
  });

  test('exp show: the params that differ, the metrics, sorted', async () => {
    const r = await p.cli('exp', 'show', '--sort', 'test.accuracy', '--desc', '--json');
    assert.equal(r.exitCode, 0, r.stderr);
    const t = JSON.parse(r.stdout);
    assert.deepEqual(t.params, ['train.lr']);
    assert.deepEqual(t.metrics, ['loss', 'test.accuracy']);
    assert.deepEqual(
      t.experiments.map((e: { params: Record<string, number> }) => e.params['train.lr']),
      [0.2, 0.1],
    );
    const asc = JSON.parse((await p.cli('exp', 'show', '--sort', 'loss', '--json')).stdout);
    assert.deepEqual(
      asc.experiments.map((e: { params: Record<string, number> }) => e.params['train.lr']),
      [0.2, 0.1],
    );
    const human = await p.cli('exp', 'show', '--sort', 'train.lr');
    assert.match(
      human.stdout,
      /experiment\s+status\s+train\.lr\s+loss\s+test\.accuracy\nfast\s+success\s+0\.1\s+0\.9\s+0\.6\n/,
    );
    const csv = await p.cli('exp', 'show', '--csv', '--sort', 'name');
    assert.match(csv.stdout, /^experiment,status,train\.lr,loss,test\.accuracy\n/);
    const bad = await p.cli('exp', 'show', '--sort', 'test.acuracy');
    assert.equal(bad.exitCode, 2);
    assert.match(bad.stderr, /Did you mean 'test\.accuracy'\?/);
  });

  test('exp diff: what differs, with the change; an unknown name lists the known ones', async () => {
    const other = JSON.parse((await p.cli('exp', 'show', '--sort', 'train.lr', '--json')).stdout).experiments[1].name;
    const r = await p.cli('exp', 'diff', 'fast', other, '--json');
    assert.equal(r.exitCode, 0, r.stderr);
    const d = JSON.parse(r.stdout);
    assert.deepEqual(d.params, [{ key: 'train.lr', old: 0.1, new: 0.2, delta: 0.1 }]);
    assert.deepEqual(
      d.metrics.map((m: { key: string }) => m.key),
      ['loss', 'test.accuracy'],
    );
    assert.ok(Math.abs(d.metrics[1].delta - 0.1) < 1e-9);
    const human = await p.cli('exp', 'diff', 'fast', other);
    assert.match(human.stdout, /test\.accuracy\s+0\.6\s+0\.7\s+\+0\.1/);
    const unknown = await p.cli('exp', 'diff', 'fast', 'fats');
    assert.equal(unknown.exitCode, 2);
    assert.match(unknown.stderr, /no experiment named 'fats'.*Known: .*fast/);
  });

  test('metrics show, and metrics / params diff against HEAD', async () => {
    const show = JSON.parse((await p.cli('metrics', 'show', '--json')).stdout);
    assert.deepEqual(show.metrics, { 'artifacts/metrics.json': { 'test.accuracy': 0.501, loss: 0.999 } });
    p.write('configs/default.yaml', CONFIG.replace('lr: 0.001', 'lr: 0.25'));
    const params = await p.cli('params', 'diff', '--json');
    assert.equal(params.exitCode, 0, params.stderr);
    assert.deepEqual(JSON.parse(params.stdout).params, [{ key: 'train.lr', old: 0.001, new: 0.25, delta: 0.249 }]);
    assert.match((await p.cli('params', 'diff')).stdout, /at HEAD -> the current config \(configs\/default\.yaml\)/);
    assert.equal((await p.cli('run')).exitCode, 0);
    p.runs();
    const r = await p.cli('metrics', 'diff', 'HEAD', '--json');
    assert.equal(r.exitCode, 0, r.stderr);
    const d = JSON.parse(r.stdout);
    assert.deepEqual(
      d.metrics.map((m: { key: string; old: number; new: number }) => [m.key, m.old, m.new]),
      [
        ['loss', 0.999, 0.75],
        ['test.accuracy', 0.501, 0.75],
      ],
    );
    const human = await p.cli('metrics', 'diff');
    assert.match(human.stdout, /artifacts\/metrics\.json\s+test\.accuracy\s+0\.501\s+0\.75\s+\+0\.249/);
    const badRev = await p.cli('metrics', 'diff', 'no-such-rev');
    assert.equal(badRev.exitCode, 2);
    assert.match(badRev.stderr, /cannot read pipeline\.lock at 'no-such-rev'/);
    // Put the config back for the next test.
    p.write('configs/default.yaml', CONFIG);
    assert.equal((await p.cli('run')).exitCode, 0);
    p.runs();
  });

  test('exp apply writes the overrides into the config, comments kept; `run` then restores, runs nothing', async () => {
    const r = await p.cli('exp', 'apply', 'fast');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /configs\/default\.yaml: train\.lr 0\.001 -> 0\.1/);
    assert.match(r.stdout, /`pipeline run` to restore its results from the cache/);
    assert.equal(
      p.read('configs/default.yaml'),
      CONFIG.replace('lr: 0.001 # learning rate', 'lr: 0.1 # learning rate'),
    );
    const run = await p.cli('run');
    assert.equal(run.exitCode, 0, run.stderr);
    assert.deepEqual(p.runs(), []);
    assert.match(run.stdout, /↺ train restored from cache/);
    assert.match(run.stdout, /↺ evaluate restored from cache/);
    assert.deepEqual(JSON.parse(p.read('artifacts/metrics.json')).test, { accuracy: 0.6 });
  });
});

describe('exp sweep', () => {
  let p: Project;
  before(() => {
    p = expProject();
    p.write(
      'sweeps/lrs.yaml',
      `name: lrs
base:
  train.epochs: 5
grid:
  train.lr: [0.1, 0.2, 0.3]
repeats:
  train.seed: [1, 2]
report:
  module: report.ts
  dir: out/sweeps
`,
    );
    // A report module as a project would provide one: it records what it was given.
    p.write(
      'report.ts',
      `import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
export async function writeSweepReport(dir, name, rows, opts) {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name + '.md');
  writeFileSync(file, JSON.stringify({ rows, opts }));
  return { files: [file] };
}
`,
    );
  });
  after(() => p.remove());

  test('a grid of 3 with 2 repeats runs 6 experiments, the shared upstream stage once', async () => {
    const r = await p.cli('exp', 'sweep', 'sweeps/lrs.yaml', '--jobs', '2', '--json');
    assert.equal(r.exitCode, 0, r.stderr);
    const runs = p.runs();
    assert.deepEqual(
      runs.filter((n) => n === 'prepare'),
      ['prepare'],
      'prepare ran in the first experiment only',
    );
    assert.equal(runs.filter((n) => n === 'train').length, 6);
    assert.equal(runs.filter((n) => n === 'evaluate').length, 6);
    assert.ok(!p.exists('pipeline.lock'), 'the project itself never ran');

    const summary = lastJson(r.stdout);
    assert.equal(summary.type, 'sweep-summary');
    assert.deepEqual(
      summary.experiments.map((e: { name: string; status: string }) => `${e.name} ${e.status}`),
      ['lrs-01', 'lrs-02', 'lrs-03', 'lrs-04', 'lrs-05', 'lrs-06'].map((n) => `${n} success`),
    );
    assert.equal(summary.groups.length, 3);
    assert.deepEqual(summary.groups[0].params, { 'train.lr': 0.1 });
    assert.deepEqual(summary.groups[0].stats['test.accuracy'], { mean: 0.6, std: 0, n: 2 });

    const later = record(p, 'lrs-04');
    assert.deepEqual(later.overrides, { 'train.epochs': 5, 'train.lr': 0.2, 'train.seed': 2 });
    assert.equal(later.stages.prepare.outcome, 'restored');
    const rows = JSON.parse(p.read('.pipeline/experiments/sweeps/lrs.json')).rows;
    assert.equal(rows.length, 6);
    assert.deepEqual(rows[3].params, { 'train.lr': 0.2, 'train.seed': 2 });
    assert.equal(rows[3].seed, 2);

    const report = JSON.parse(p.read('out/sweeps/lrs.md'));
    assert.equal(report.rows.length, 6);
    assert.equal(report.opts.seedKey, 'train.seed');
    assert.deepEqual(summary.report, ['out/sweeps/lrs.md']);
  });

  test('a rerun skips every experiment already done', async () => {
    const r = await p.cli('exp', 'sweep', 'sweeps/lrs.yaml', '--jobs', '2');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(p.runs(), []);
    assert.equal(r.stdout.match(/skipped \(done\)/g)?.length, 7, 'six lines and the summary');
    assert.match(r.stdout, /sweep lrs: 0 ran, 6 skipped \(done\), 0 failed/);
    assert.match(r.stdout, /train\.lr\s+n\s+loss\s+test\.accuracy\n0\.1\s+2\s+0\.9 ± 0\s+0\.6 ± 0/);
  });

  test('exp show --sweep sorts its experiments by a metric', async () => {
    const t = JSON.parse(
      (await p.cli('exp', 'show', '--sweep', 'lrs', '--sort', 'test.accuracy', '--desc', '--json')).stdout,
    );
    assert.deepEqual(t.params, ['train.lr', 'train.seed']);
    const acc = t.experiments.map((e: { metrics: Record<string, number> }) => e.metrics['test.accuracy']);
    assert.deepEqual(acc, [0.8, 0.8, 0.7, 0.7, 0.6, 0.6]);
    assert.deepEqual(
      t.experiments
        .slice(0, 2)
        .map((e: { name: string }) => e.name)
        .sort(),
      ['lrs-05', 'lrs-06'],
    );
  });

  test('a malformed sweep file: file and line; an unknown key: the nearest one', async () => {
    p.write('sweeps/bad.yaml', 'name: bad\ngrid:\n  train.lr: [0.1, 0.2\n');
    const bad = await p.cli('exp', 'sweep', 'sweeps/bad.yaml');
    assert.equal(bad.exitCode, 2);
    assert.match(bad.stderr, /malformed YAML in sweeps\/bad\.yaml:\d+/);
    p.write('sweeps/typo.yaml', 'name: typo\ngrid:\n  train.lr: [0.1]\n  train.epoch: [1, 2]\n');
    const typo = await p.cli('exp', 'sweep', 'sweeps/typo.yaml');
    assert.equal(typo.exitCode, 2);
    assert.match(
      typo.stderr,
      /unknown config key 'train\.epoch' \(in sweeps\/typo\.yaml:4\)\. Did you mean 'train\.epochs'\?/,
    );
    p.write('sweeps/key.yaml', 'name: key\ngird:\n  train.lr: [0.1]\n');
    const key = await p.cli('exp', 'sweep', 'sweeps/key.yaml');
    assert.equal(key.exitCode, 2);
    assert.match(key.stderr, /sweeps\/key\.yaml:2: unknown key 'gird'; did you mean 'grid'\?/);
    assert.deepEqual(p.runs(), []);
    assert.ok(!existsSync(p.path('.pipeline/experiments/typo-01.json')));
  });

  test('a failing experiment is recorded as failed, the others go on, and the exit code says so', async () => {
    p.write('sweeps/neg.yaml', 'name: neg\nlist:\n  - train.lr: 0.05\n  - train.lr: -1\n');
    p.write(
      'stages/train.ts',
      readFileSync(p.path('stages/train.ts'), 'utf8').replace(
        'const input =',
        "if (ctx.params.train.lr < 0) throw new Error('a negative rate');\n    const input =",
      ),
    );
    const r = await p.cli('exp', 'sweep', 'sweeps/neg.yaml');
    assert.equal(r.exitCode, 1);
    assert.match(r.stdout, /✓ neg-01/);
    assert.match(r.stdout, /✗ neg-02 failed: stage 'train' threw: a negative rate/);
    assert.match(r.stdout, /sweep neg: 1 ran, 0 skipped \(done\), 1 failed/);
    assert.equal(record(p, 'neg-02').status, 'failed');
    assert.equal(record(p, 'neg-02').logs, '.pipeline/experiments/logs/neg-02');
    assert.match(r.stdout, /its stage logs: \.pipeline\/experiments\/logs\/neg-02\//);
    assert.ok(p.exists('.pipeline/experiments/logs/neg-02/train.log'));
    p.runs();
  });

  test('Ctrl-C stops the running experiments, keeps the finished ones, exits 130', async () => {
    p.write('sweeps/slow.yaml', 'name: slow\nlist:\n  - train.lr: 0.15\n  - train.lr: 0.6\n  - train.lr: 0.7\n');
    const child = p.spawn(['exp', 'sweep', 'sweeps/slow.yaml', '--jobs', '2']);
    // Wait until both slow experiments are inside their train stage.
    const started = () =>
      p.exists('runs.log')
        ? p
            .read('runs.log')
            .split('\n')
            .filter((l) => l === 'train').length
        : 0;
    for (let i = 0; i < 300 && started() < 3; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(started(), 3);
    const t0 = Date.now();
    child.kill('SIGINT');
    const r = await child;
    assert.equal(r.exitCode, 130, String(r.stderr));
    assert.ok(Date.now() - t0 < 15_000, 'stopped promptly');
    assert.match(String(r.stdout), /✓ slow-01/);
    assert.match(String(r.stdout), /slow-02 interrupted: nothing recorded for it/);
    assert.match(String(r.stdout), /sweep slow interrupted: 1 ran, 0 skipped \(done\), 0 failed, 2 not finished/);
    assert.equal(record(p, 'slow-01').status, 'success');
    assert.ok(!p.exists('.pipeline/experiments/slow-02.json'));
    assert.ok(!p.exists('.pipeline/experiments/slow-03.json'));
    assert.deepEqual(
      readdirSync(p.path('.pipeline/exp')).filter((f) => f.startsWith('ws-slow')),
      [],
      'their workspaces are removed',
    );
    p.runs();
  });
});
