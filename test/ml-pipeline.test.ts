// The whole ML pipeline through the real CLI, offline, on a small generated face set: download -> model
// -> embed -> split -> train -> evaluate -> report. What reruns when a split or train key changes, and
// the errors a user meets first.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Project } from './rig.ts';

const SMALL = ['--set', 'data.count=400', '--set', 'train.max_epochs=15'];

interface Metrics {
  backend: string;
  classes: string[];
  val: { accuracy: number; n: number };
  test: { accuracy: number; macro_f1: number; n: number };
  per_class: Array<{ class: string; f1: number }>;
  confusion: { labels: string[]; matrix: number[][] };
}

const ranStages = (stdout: string) => [...stdout.matchAll(/^▶ (\S+)/gm)].map((m) => m[1]).sort();

describe('the ML pipeline, end to end, offline', () => {
  let p: Project;
  before(() => {
    p = Project.repoCopy().offline();
  });
  after(() => p.remove());

  test('a run trains a classifier well above chance and writes metrics, per-class CSV and the report', async () => {
    const r = await p.cli('run', ...SMALL);
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.deepEqual(ranStages(r.stdout), ['download', 'embed', 'evaluate', 'model', 'report', 'split', 'train']);
    const m = JSON.parse(p.read('artifacts/metrics.json')) as Metrics;
    assert.deepEqual(m.classes, ['closed', 'open']);
    assert.equal(m.test.n, 40);
    assert.ok(m.test.accuracy > 0.65, `test accuracy ${m.test.accuracy}`);
    assert.equal(
      m.confusion.matrix.flat().reduce((a, b) => a + b, 0),
      40,
    );
    assert.match(p.read('artifacts/per_class.csv'), /^class,precision,recall,f1,support\nclosed,/);
    const history = JSON.parse(p.read('artifacts/train/history.json'));
    assert.ok(history.history.length >= 1 && history.history.length <= 15);
    assert.ok(p.exists('artifacts/train/model/model.json') && p.exists('artifacts/train/model/weights.bin'));
    assert.match(p.read('reports/latest/report.md'), /NOT CLIP/);
    assert.match(p.read('reports/latest/report.html'), /<svg/);
    const again = await p.cli('run', ...SMALL);
    assert.deepEqual(ranStages(again.stdout), [], 'second run: all fresh');
    // Embedding again gives the same matrix: only the report (it shows embed's timings) runs after it.
    assert.equal((await p.cli('run', 'embed', '--force', ...SMALL)).exitCode, 0);
    assert.deepEqual(ranStages((await p.cli('run', ...SMALL)).stdout), ['report'], 'early cutoff after embed');
  });

  test('a new split.seed reruns split and what follows, nothing upstream', async () => {
    const r = await p.cli('run', ...SMALL, '--set', 'split.seed=7');
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.deepEqual(ranStages(r.stdout), ['evaluate', 'report', 'split', 'train']);
  });

  test('a train key reruns train, evaluate and report only; the same seed gives the same weights', async () => {
    const before = p.read('artifacts/train/history.json');
    const r = await p.cli('run', ...SMALL, '--set', 'split.seed=7', '--set', 'train.dropout=0.2');
    assert.deepEqual(ranStages(r.stdout), ['evaluate', 'report', 'train']);
    assert.notEqual(p.read('artifacts/train/history.json'), before);
    // Back to the earlier value: restored from the run-cache, not trained again.
    const back = await p.cli('run', ...SMALL, '--set', 'split.seed=7');
    assert.match(back.stdout, /↺ train restored from cache/);
    const weights = p.read('artifacts/train/model/weights.bin');
    const forced = await p.cli('run', 'train', '--force', ...SMALL, '--set', 'split.seed=7');
    assert.equal(forced.exitCode, 0, forced.stdout + forced.stderr);
    assert.equal(p.read('artifacts/train/model/weights.bin'), weights, 'same seed, same backend: same weights');
  });

  test("the seed's GLU sweep: 6 experiments, 2 at a time, upstream shared, a ranked report", async () => {
    const r = await p.cli(
      'exp',
      'sweep',
      'configs/sweeps/glu.yaml',
      '--jobs',
      '2',
      '--json',
      ...SMALL,
      '--set',
      'train.max_epochs=3',
    );
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    const shown = JSON.parse((await p.cli('exp', 'show', '--sweep', 'glu', '--json')).stdout);
    const rows = (Array.isArray(shown) ? shown : shown.experiments) as Array<Record<string, unknown>>;
    assert.equal(rows.length, 6);
    const record = JSON.parse(p.read('.pipeline/experiments/glu-02.json'));
    assert.equal(record.status, 'success');
    // Upstream of train was restored from the run-cache or fresh, never computed again.
    for (const s of ['download', 'model', 'embed', 'split']) assert.notEqual(record.stages[s].outcome, 'ran', s);
    assert.equal(record.stages.train.outcome, 'ran');
    const md = p.read('reports/sweeps/glu.md');
    assert.match(md, /glu/);
    assert.match(md, /relu/);
    assert.match(md, /±/);
    assert.ok(p.exists('reports/sweeps/glu.html'));
    assert.ok(p.exists('reports/glu-01/report.html'), "each experiment's report is kept");
  });

  test('an unknown activation names the valid ones; bad hidden sizes name the bad value', async () => {
    const r = await p.cli('run', ...SMALL, '--set', 'train.activation=swishy');
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stdout + r.stderr, /swishy/);
    assert.match(r.stdout + r.stderr, /relu.*gelu.*glu|glu.*relu/s);
    const h = await p.cli('run', ...SMALL, '--set', 'train.hidden=[64, 0]');
    assert.notEqual(h.exitCode, 0);
    assert.match(h.stdout + h.stderr, /hidden\[1\].*0/);
  });

  test('a class too small to stratify is named', async () => {
    // The first 6 generated faces: 5 open, 1 closed.
    const r = await p.cli('run', '--set', 'data.count=6', '--set', 'train.max_epochs=1');
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stdout + r.stderr, /cannot stratify: class 'closed' has 1 image; each class needs at least 3/);
  });
});
