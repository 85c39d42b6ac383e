// The cache, the run-cache and a folder remote, end to end: counting stages prove what ran.

import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { blake3 } from '@napi-rs/blake-hash';
import { execa } from 'execa';
import { chainProject, countingStage, Project, pipelineFile } from './rig.ts';

const git = (cwd: string, ...args: string[]) =>
  execa('git', args, {
    cwd,
    env: { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' },
  });

/** Every file under `dir` (relative), recursively. */
function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (abs: string, rel: string) => {
    let dirents: import('node:fs').Dirent[];
    try {
      dirents = readdirSync(abs, { withFileTypes: true });
    } catch {
      return; // not there (yet)
    }
    for (const d of dirents) {
      if (d.isDirectory()) walk(path.join(abs, d.name), `${rel}${d.name}/`);
      else out.push(`${rel}${d.name}`);
    }
  };
  walk(dir, '');
  return out.sort();
}

/** Every object in a cache or remote folder is named by the BLAKE3 of its bytes. */
function assertObjectsIntact(dir: string): number {
  const objects = files(path.join(dir, 'objects')).filter((f) => !f.includes('.'));
  for (const f of objects) {
    assert.equal(blake3(readFileSync(path.join(dir, 'objects', f))).toString('hex'), f.replace('/', ''), `object ${f}`);
  }
  return objects.length;
}

describe('run-cache', () => {
  let p: Project;
  before(async () => {
    p = chainProject();
    assert.equal((await p.cli('run')).exitCode, 0);
    p.runs();
  });
  after(() => p.remove());

  test('set a param, run, set it back: restored from the cache, not rerun', async () => {
    const original = p.read('artifacts/model.txt');
    await p.cli('run', '--set', 'train.lr=0.5');
    assert.deepEqual(p.runs(), ['evaluate', 'train']);
    const s = await p.statusJson();
    assert.equal(s.stages[1].state, 'stale');
    assert.equal((s.stages[1] as { restorable?: boolean }).restorable, true);
    assert.match(
      (await p.cli('run', '--dry-run')).stdout,
      /would restore train from cache: changed param: train\.lr \(0\.5 -> 0\.001\)/,
    );
    const r = await p.cli('run');
    assert.equal(r.exitCode, 0);
    assert.deepEqual(p.runs(), [], 'nothing reran');
    assert.match(r.stdout, /train restored from cache/);
    assert.match(r.stdout, /0 ran, 2 restored, 1 fresh/);
    assert.equal(p.read('artifacts/model.txt'), original);
    assert.deepEqual(
      (await p.statusJson()).stages.map((x) => x.state),
      ['fresh', 'fresh', 'fresh'],
    );
  });

  test('a corrupt cache object is detected, never used: the stage reruns', async () => {
    const lock = p.read('pipeline.lock');
    const hash = /artifacts\/model\.txt:\n\s+hash: ([0-9a-f]{64})/.exec(lock)?.[1] as string;
    const object = p.path(`.pipeline/cache/objects/${hash.slice(0, 2)}/${hash.slice(2)}`);
    chmodSync(object, 0o644);
    writeFileSync(object, 'garbage of another length');
    rmSync(p.path('artifacts/model.txt'));

    const co = await p.cli('checkout', 'train');
    assert.equal(co.exitCode, 1);
    assert.match(co.stdout, /cannot restore artifacts\/model\.txt: cache object objects\/.* is corrupt/);
    assert.ok(!p.exists('artifacts/model.txt'), 'nothing half-restored');

    const r = await p.cli('run');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(p.runs(), ['train'], 'recomputed instead');
    assert.equal(blake3(readFileSync(p.path('artifacts/model.txt'))).toString('hex'), hash);
    assert.ok(files(p.path('.pipeline/cache/corrupt')).length >= 1, 'the corrupt object was moved aside');
    assertObjectsIntact(p.path('.pipeline/cache'));
  });

  test('checkout restores deleted outs from the cache (folder outs too)', async () => {
    rmSync(p.path('artifacts'), { recursive: true });
    const r = await p.cli('checkout');
    assert.equal(r.exitCode, 0, r.stdout);
    assert.match(r.stdout, /3 restored, 0 already matching, 0 failed/);
    assert.deepEqual(
      (await p.statusJson()).stages.map((x) => x.state),
      ['fresh', 'fresh', 'fresh'],
    );
    assert.deepEqual(p.runs(), []);
  });

  test('gc --dry-run reports and removes nothing; gc keeps what the lock needs', async () => {
    const before = files(p.path('.pipeline/cache/objects')).length;
    const dry = await p.cli('gc', '--dry-run', '--keep-runs', '0');
    assert.match(dry.stdout, /would remove (\d+) objects \([\d.]+ kB\) and (\d+) run-cache entries/);
    const wouldRemove = Number(/would remove (\d+)/.exec(dry.stdout)?.[1]);
    assert.ok(wouldRemove >= 2, 'the lr=0.5 outs are unreferenced');
    assert.equal(files(p.path('.pipeline/cache/objects')).length, before);
    const real = await p.cli('gc', '--keep-runs', '0');
    assert.match(real.stdout, new RegExp(`removed ${wouldRemove} objects`));
    assert.equal(files(p.path('.pipeline/cache/objects')).length, before - wouldRemove);
    rmSync(p.path('artifacts'), { recursive: true });
    assert.equal((await p.cli('checkout')).exitCode, 0, 'everything the lock needs is still there');
    // And the lr=0.5 run entry is gone: setting it again reruns.
    await p.cli('run', '--set', 'train.lr=0.5');
    assert.deepEqual(p.runs(), ['evaluate', 'train']);
  });
});

describe('folder remote', () => {
  let p: Project;
  let remoteDir: string;
  const clones: Project[] = [];
  before(async () => {
    p = chainProject();
    p.write('data/images/a.png', 'A');
    p.write('data/images/b/c.png', 'C');
    p.write(
      'stages/embed.ts',
      countingStage('embed', {
        deps: ['data/images'],
        outs: ['artifacts/embeddings'],
        body: "(await import('node:fs')).mkdirSync(ctx.outs[0] + '/x', { recursive: true }); writeFileSync(ctx.outs[0] + '/x/all.txt', input); writeFileSync(ctx.outs[0] + '/n.txt', '2');",
      }),
    );
    p.write('pipeline.ts', pipelineFile(['prepare', 'train', 'evaluate', 'embed']));
    p.write('.gitignore', 'artifacts/\n.pipeline/*\n!.pipeline/config.yaml\nruns.log\n');
    remoteDir = `${p.path('../').replace(/\/$/, '')}/${path.basename(p.dir)}-remote`;
    assert.equal((await p.cli('remote', 'add', 'origin', remoteDir)).exitCode, 0);
    await git(p.dir, 'init', '-q');
  });
  after(() => {
    for (const c of [p, ...clones]) c.remove();
    rmSync(remoteDir, { recursive: true, force: true });
  });

  const clone = async (): Promise<Project> => {
    const dir = `${p.dir}-clone${clones.length}`;
    await execa('git', ['clone', '-q', p.dir, dir]);
    const c = new Project(dir);
    clones.push(c);
    return c;
  };

  test('an unreachable remote: a clear error naming it, non-zero exit, nothing changed', async () => {
    assert.equal((await p.cli('run')).exitCode, 0);
    p.runs();
    const r = await p.cli('push');
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /remote 'origin' is unreachable: folder .*-remote does not exist/);
  });

  test('push, then a fresh clone + pull: all fresh, run runs nothing', async () => {
    (await import('node:fs')).mkdirSync(remoteDir);
    const status0 = await p.cli('status', '--remote');
    assert.match(status0.stdout, /train: 1\/1 objects local, 0\/1 on 'origin': local only \(push\)/);
    const r = await p.cli('push');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /push: \d+ objects .* to 'origin', 0 already there/);
    assert.match((await p.cli('status', '--remote')).stdout, /embed: 3\/3 objects local, 3\/3 on 'origin': in sync/);
    assert.equal(assertObjectsIntact(remoteDir), files(p.path('.pipeline/cache/objects')).length);
    assert.match((await p.cli('push')).stdout, /push: 0 objects .* already there/);

    await git(p.dir, 'add', '-A');
    await git(p.dir, 'commit', '-qm', 'pipeline');
    const c = await clone();
    assert.ok(!c.exists('artifacts'));
    const pull = await c.cli('pull');
    assert.equal(pull.exitCode, 0, pull.stdout + pull.stderr);
    assert.match(pull.stdout, /checkout: 4 restored/);
    assert.deepEqual(
      (await c.statusJson()).stages.map((x) => x.state),
      ['fresh', 'fresh', 'fresh', 'fresh'],
    );
    const run = await c.cli('run');
    assert.match(run.stdout, /0 ran, 4 fresh/);
    assert.deepEqual(c.runs(), []);
    assert.equal(c.read('artifacts/embeddings/x/all.txt'), p.read('artifacts/embeddings/x/all.txt'));
  });

  test('run --pull in a fresh clone restores from the remote run-cache; run --push uploads', async () => {
    const c = await clone();
    const r = await c.cli('run', '--pull');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /0 ran, 4 restored/);
    assert.deepEqual(c.runs(), []);
    // A new result in the clone goes to the remote; the original then restores it without running.
    const pushed = await c.cli('run', '--push', '--set', 'train.epochs=9');
    assert.deepEqual(c.runs(), ['evaluate', 'train']);
    assert.equal(pushed.exitCode, 0);
    const back = await p.cli('run', '--pull', '--set', 'train.epochs=9');
    assert.match(back.stdout, /train restored from the remote/);
    assert.deepEqual(p.runs(), []);
  });

  test('a push killed midway leaves only complete objects; rerun completes; pull verifies', async () => {
    // Many objects, so the push is still going when it is killed.
    for (let i = 0; i < 3000; i++) p.write(`data/images/many/${i}.png`, `image ${i} `.repeat(50));
    const ran = await p.cli('run');
    assert.equal(ran.exitCode, 0, ran.stdout + ran.stderr);
    assert.deepEqual(p.runs(), ['embed']);
    const push = p.spawn(['push', '--jobs', '2']);
    const started = Date.now();
    while (Date.now() - started < 20_000) {
      const n = files(path.join(remoteDir, 'objects')).length;
      if (n > 50) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    push.kill('SIGKILL');
    await push;
    const partial = files(path.join(remoteDir, 'objects')).length;
    assert.ok(partial < 3000, `killed midway (${partial} objects there)`);
    assertObjectsIntact(remoteDir);
    const again = await p.cli('push');
    assert.equal(again.exitCode, 0, again.stderr);
    assertObjectsIntact(remoteDir);

    await git(p.dir, 'add', '-A');
    await git(p.dir, 'commit', '-qm', 'more images');
    const c = await clone();
    const pull = await c.cli('pull');
    assert.equal(pull.exitCode, 0, pull.stdout);
    assert.equal(readdirSync(c.path('artifacts/embeddings')).length, 2);
    const st = await c.statusJson();
    assert.deepEqual(
      st.stages.map((x) => x.state),
      ['fresh', 'fresh', 'fresh', 'fresh'],
      JSON.stringify(st),
    );
  });

  test('two pushes of the same objects at once both succeed', async () => {
    rmSync(remoteDir, { recursive: true });
    (await import('node:fs')).mkdirSync(remoteDir);
    const [a, b] = await Promise.all([p.cli('push', '--no-wait'), p.spawn(['push']).then((r) => r)]);
    // One of them holds the workspace lock; the other waits for it (or, with --no-wait, says so).
    assert.ok(a.exitCode === 0 || /holds this workspace/.test(a.stderr), a.stderr);
    assert.equal(b.exitCode, 0);
    assertObjectsIntact(remoteDir);
    assert.ok(statSync(remoteDir).isDirectory());
  });

  test('gc --all-commits keeps what an older committed lock needs', async () => {
    const oldModel = p.read('artifacts/model.txt');
    const oldHash = /artifacts\/model\.txt:\n\s+hash: ([0-9a-f]{64})/.exec(p.read('pipeline.lock'))?.[1] as string;
    const object = `.pipeline/cache/objects/${oldHash.slice(0, 2)}/${oldHash.slice(2)}`;
    p.write('configs/default.yaml', p.read('configs/default.yaml').replace('lr: 0.001', 'lr: 0.07'));
    await p.cli('run');
    p.runs();
    await git(p.dir, 'add', '-A');
    await git(p.dir, 'commit', '-qm', 'lr 0.07');
    assert.ok(p.exists(object));
    const kept = await p.cli('gc', '--all-commits', '--keep-runs', '0');
    assert.equal(kept.exitCode, 0, kept.stderr);
    assert.ok(p.exists(object), 'the previous commit still needs it');
    await p.cli('gc', '--keep-runs', '0');
    assert.ok(!p.exists(object), 'without --all-commits only the current lock counts');
    assert.notEqual(p.read('artifacts/model.txt'), oldModel);
  });
});
