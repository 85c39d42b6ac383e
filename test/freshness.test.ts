// What reruns, and only that: a counting stage per node of the chain proves it.

import assert from 'node:assert/strict';
import { renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { chainProject, type Project } from './rig.ts';

describe('freshness', () => {
  let p: Project;
  before(async () => {
    p = chainProject();
    const r = await p.cli('run');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(p.runs(), ['evaluate', 'prepare', 'train']);
    assert.match(r.stdout, /3 ran, 0 fresh, 0 failed/);
  });
  after(() => p.remove());

  test('a second run does nothing', async () => {
    const r = await p.cli('run');
    assert.equal(r.exitCode, 0);
    assert.deepEqual(p.runs(), []);
    assert.match(r.stdout, /0 ran, 3 fresh/);
    const s = await p.statusJson();
    assert.deepEqual(
      s.stages.map((x) => x.state),
      ['fresh', 'fresh', 'fresh'],
    );
  });

  test('editing a dep reruns its stage and what is downstream', async () => {
    p.write('data/raw.txt', 'Hello Pipeline\n');
    const s = await p.statusJson();
    assert.deepEqual(s.stages[0].reasons, [{ kind: 'dep', path: 'data/raw.txt', change: 'modified' }]);
    assert.deepEqual(s.stages[1].reasons, [{ kind: 'upstream', path: 'prepare', stage: 'prepare' }]);
    assert.equal(s.stages[2].state, 'stale');
    await p.cli('run');
    assert.deepEqual(p.runs(), ['evaluate', 'prepare', 'train']);
  });

  test('editing a config key that no stage reads reruns nothing', async () => {
    p.write('configs/default.yaml', p.read('configs/default.yaml').replace('nobody reads this', 'still nobody'));
    await p.cli('run');
    assert.deepEqual(p.runs(), []);
  });

  test('editing a tracked key reruns that stage and downstream, and status says old -> new', async () => {
    p.write('configs/default.yaml', p.read('configs/default.yaml').replace('lr: 0.001', 'lr: 0.0005'));
    const s = await p.statusJson();
    assert.equal(s.stages[0].state, 'fresh');
    assert.deepEqual(s.stages[1].reasons, [
      { kind: 'param', path: 'train.lr', change: 'modified', old: 0.001, new: 0.0005 },
    ]);
    const text = await p.cli('status');
    assert.match(text.stdout, /changed param: train\.lr \(0\.001 -> 0\.0005\)/);
    await p.cli('run');
    assert.deepEqual(p.runs(), ['evaluate', 'train']);
  });

  test('--set overrides a key for one command, typed as YAML', async () => {
    const s = await p.statusJson('--set', 'train.epochs=4');
    assert.deepEqual(s.stages[1].reasons, [
      { kind: 'param', path: 'train.epochs', change: 'modified', old: 3, new: 4 },
    ]);
    await p.cli('run', '--set', 'train.epochs=4');
    assert.deepEqual(p.runs(), ['evaluate', 'train']);
    // Back to the file's value: stale again (no run-cache yet), and it says so.
    const back = await p.statusJson();
    assert.deepEqual(back.stages[1].reasons[0], {
      kind: 'param',
      path: 'train.epochs',
      change: 'modified',
      old: 4,
      new: 3,
    });
    await p.cli('run');
    p.runs();
  });

  test("editing a stage's own source reruns it", async () => {
    p.write('stages/train.ts', `${p.read('stages/train.ts')}\n// a comment changes the code hash\n`);
    const s = await p.statusJson();
    assert.deepEqual(s.stages[1].reasons, [{ kind: 'code', path: 'stages/train.ts', change: 'modified' }]);
    await p.cli('run');
    // train's out is byte-identical, so evaluate is not rerun (early cutoff).
    assert.deepEqual(p.runs(), ['train']);
  });

  test('editing a module the stage imports reruns it; outs unchanged stop the cascade', async () => {
    p.write('stages/helpers.ts', 'export const tidy = (s: string) => s.trim(); // same behaviour\n');
    const s = await p.statusJson();
    assert.deepEqual(s.stages[0].reasons, [{ kind: 'code', path: 'stages/helpers.ts', change: 'modified' }]);
    await p.cli('run');
    assert.deepEqual(p.runs(), ['prepare']);
  });

  test('a deleted out is reported and repaired', async () => {
    p.write('artifacts/model.txt', '');
    renameSync(p.path('artifacts/model.txt'), p.path('artifacts/gone.txt'));
    const s = await p.statusJson();
    assert.deepEqual(s.stages[1].reasons, [{ kind: 'out-missing', path: 'artifacts/model.txt' }]);
    const text = await p.cli('status');
    assert.match(text.stdout, /train\s+stale \(restorable\)\n\s+missing out: artifacts\/model\.txt/);
    // Its inputs are unchanged, so the run-cache has its outs: restored, not rerun.
    const r = await p.cli('run');
    assert.match(r.stdout, /train restored from cache/);
    assert.deepEqual(p.runs(), []);
    assert.ok(p.exists('artifacts/model.txt'));
    // Without the run-cache it reruns.
    rmSync(p.path('artifacts/model.txt'));
    await p.cli('run', '--no-run-cache');
    assert.deepEqual(p.runs(), ['train']);
  });

  test('an edited out is reported and repaired', async () => {
    const before = p.read('artifacts/metrics.json');
    p.write('artifacts/metrics.json', '{"len": 9999}');
    const s = await p.statusJson();
    assert.deepEqual(s.stages[2].reasons, [{ kind: 'out-modified', path: 'artifacts/metrics.json' }]);
    assert.equal((s.stages[2] as { restorable?: boolean }).restorable, true);
    await p.cli('run');
    assert.deepEqual(p.runs(), []);
    assert.equal(p.read('artifacts/metrics.json'), before);
  });

  test('a file replaced by one of equal size and mtime is caught (inode / ctime)', async () => {
    const file = p.path('data/raw.txt');
    const ref = p.path('mtime-ref');
    const mtimeNs = (f: string) => statSync(f, { bigint: true }).mtimeNs;
    const settle = async () => {
      // Let the stat cache trust the current file (it distrusts files changed in the last 2 s).
      await new Promise((r) => setTimeout(r, 2100));
      await p.cli('status');
      await execa('cp', ['-p', file, ref]);
    };
    await settle();
    const original = p.read('data/raw.txt');
    const forged = original.replace('Hello', 'HELLO');
    assert.equal(forged.length, original.length);
    // In place (same inode), then mtime forged back to the nanosecond.
    writeFileSync(file, forged);
    await execa('touch', ['-r', ref, file]);
    assert.equal(mtimeNs(file), mtimeNs(ref));
    const s = await p.statusJson();
    assert.deepEqual(s.stages[0].reasons, [{ kind: 'dep', path: 'data/raw.txt', change: 'modified' }]);

    // By rename over it (new inode), mtime forged too.
    await p.cli('run');
    p.runs();
    await settle();
    writeFileSync(`${file}.new`, original);
    await execa('touch', ['-r', ref, `${file}.new`]);
    renameSync(`${file}.new`, file);
    assert.equal(mtimeNs(file), mtimeNs(ref));
    const s2 = await p.statusJson();
    assert.deepEqual(s2.stages[0].reasons, [{ kind: 'dep', path: 'data/raw.txt', change: 'modified' }]);
  });

  test('a stage removed from pipeline.ts leaves the lock at the next run', async () => {
    const full = p.read('pipeline.ts');
    p.write('pipeline.ts', full.replace('definePipeline([s0, s1, s2])', 'definePipeline([s0, s1])'));
    p.write('data/raw.txt', 'one more change\n');
    assert.equal((await p.cli('run')).exitCode, 0);
    p.runs();
    assert.ok(!/^ {2}evaluate:/m.test(p.read('pipeline.lock')), 'no entry for the removed stage');
    assert.match(p.read('pipeline.lock'), /^ {2}train:/m);
    p.write('pipeline.ts', full);
  });
});
