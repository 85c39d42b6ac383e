// Content hashes on real files: BLAKE3 known answers, folder hashes through the worker pool (big
// folders) and on the main thread (small ones) agree, and a warm folder re-reads only what changed.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { blake3 } from '@napi-rs/blake-hash';
import { Hasher, hashListing, hashNamesDigests, walkFiles } from '../engine/hashing.ts';
import { StatCache } from '../engine/stat-cache.ts';
import { REPO } from './rig.ts';

const root = mkdtempSync(path.join(tmpdir(), 'pipeline-hash-'));
const fresh = () => new Hasher(root, new StatCache(path.join(root, '.pipeline', 'stat-cache.json')));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('hashing', () => {
  after(() => rmSync(root, { recursive: true, force: true }));

  test('a file hashes to its BLAKE3 digest (the official test vector for "abc")', async () => {
    writeFileSync(path.join(root, 'abc.txt'), 'abc');
    const h = await fresh().hashPaths(['abc.txt']);
    assert.equal(h.get('abc.txt')?.hash, '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85');
    // Larger than the 1 MiB read buffer: streamed through the incremental hasher.
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 9);
    writeFileSync(path.join(root, 'big.bin'), big);
    const hb = await fresh().hashPaths(['big.bin']);
    assert.equal(hb.get('big.bin')?.hash, blake3(big).toString('hex'));
  });

  test('the walk gives files in the order of their full paths, with or without stats', () => {
    // Names around '/' (0x2f): '-' and '.' sort before it, '0' and letters after, so sorting each
    // folder's names alone ("a" < "a-b") would put a/x before a-b: the walk must not.
    const tree = ['a/x', 'a/y/z', 'a-b', 'a.b', 'a0', 'ab/c', 'b', 'B', 'é/1', 'a/y.txt', 'a/y-1/q'];
    for (const f of tree) {
      mkdirSync(path.dirname(path.join(root, 'order', f)), { recursive: true });
      writeFileSync(path.join(root, 'order', f), f);
    }
    const sorted = [...tree].sort();
    assert.deepEqual(walkFiles(path.join(root, 'order')).names, sorted);
    const warm = walkFiles(path.join(root, 'order'), true);
    assert.deepEqual(warm.names, sorted);
    assert.deepEqual(
      Array.from({ length: tree.length }, (_, i) => warm.stats[i * 4]),
      sorted.map((f) => Buffer.byteLength(f)),
      'each stat belongs to its file',
    );
    const digests = Buffer.concat(sorted.map((f) => blake3(f)));
    assert.equal(
      hashNamesDigests(sorted, digests),
      hashListing(sorted.map((f) => [f, blake3(f).toString('hex')])),
      'the buffer-built listing hash is the string-built one',
    );
  });

  test('on Linux the BLAKE3 binding loads without the package loader (and its ~12 ms process.report)', async (t) => {
    if (process.platform !== 'linux') return t.skip('the direct path is for Linux only');
    const probe = `import { createRequire } from 'node:module';
const { blake3 } = await import(${JSON.stringify(path.join(REPO, 'engine', 'blake3.mjs'))});
const loaded = Object.keys(createRequire(import.meta.url).cache);
console.log(JSON.stringify({ abc: blake3('abc').toString('hex'), packageLoader: loaded.some((k) => k.endsWith('/blake-hash/index.js')) }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8' });
    assert.deepEqual(JSON.parse(out), {
      abc: '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85',
      packageLoader: false,
    });
  });

  test('a folder of 3,000 files (hashed on worker threads) matches a hand-made listing hash', async () => {
    for (let i = 0; i < 3000; i++) {
      const dir = path.join(root, 'many', String(Math.floor(i / 500)));
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, `${i}.bin`), `file ${i}`);
    }
    const hasher = fresh();
    const h = (await hasher.hashPaths(['many'])).get('many');
    assert.equal(hasher.stats.hashedFiles, 3000);
    const expected = hashListing(
      walkFiles(path.join(root, 'many')).names.map((rel) => [
        rel,
        blake3(readFileSync(path.join(root, 'many', rel))).toString('hex'),
      ]),
    );
    assert.equal(h?.hash, expected);
    assert.equal(h?.files, 3000);
    assert.equal(
      h?.size,
      walkFiles(path.join(root, 'many')).names.reduce(
        (n, rel) => n + readFileSync(path.join(root, 'many', rel)).length,
        0,
      ),
    );
  });

  test('warm: an unchanged folder reads nothing; one edit reads one file and changes the hash', async () => {
    await sleep(2100); // out of the racy window, so the record trusts the files
    const first = fresh();
    const before = (await first.hashPaths(['many'])).get('many')?.hash;
    const again = fresh();
    assert.equal((await again.hashPaths(['many'])).get('many')?.hash, before);
    assert.equal(again.stats.hashedFiles, 0);
    assert.equal(again.stats.statted, 3000);

    writeFileSync(path.join(root, 'many', '3', '1600.bin'), 'file 1601'); // same size
    const edited = fresh();
    const after = (await edited.hashPaths(['many'])).get('many')?.hash;
    assert.equal(edited.stats.hashedFiles, 1);
    assert.notEqual(after, before);

    rmSync(path.join(root, 'many', '0', '7.bin'));
    const removed = fresh();
    const h = (await removed.hashPaths(['many'])).get('many');
    // Only the file edited a moment ago is read again: it is still inside the 2 s racy window.
    assert.equal(removed.stats.hashedFiles, 1, 'a removal reads nothing new');
    assert.equal(h?.files, 2999);
    assert.notEqual(h?.hash, after);
  });

  test('told which files changed (as watch is), a folder stats only those and hashes as a full walk does', async () => {
    const dir = path.join(root, 'hinted');
    for (let i = 0; i < 300; i++) {
      mkdirSync(path.join(dir, String(i % 3)), { recursive: true });
      writeFileSync(path.join(dir, String(i % 3), `${i}.bin`), `file ${i}`);
    }
    await fresh().hashPaths(['hinted']);
    await sleep(2100); // out of the racy window: the record trusts every file
    await fresh().hashPaths(['hinted']);

    writeFileSync(path.join(dir, '1', '4.bin'), 'file 5'); // same size, new content
    writeFileSync(path.join(dir, '2', 'new.bin'), 'new');
    rmSync(path.join(dir, '0', '3.bin'));
    const told = fresh();
    const hinted = (await told.hashPaths(['hinted'], new Map([['hinted', ['1/4.bin', '2/new.bin', '0/3.bin']]]))).get(
      'hinted',
    );
    assert.equal(told.stats.statted, 3, 'only the reported files are stat-ed');
    assert.equal(told.stats.hashedFiles, 2, 'the edited and the added file are read');
    rmSync(path.join(root, '.pipeline', 'dirs'), { recursive: true, force: true });
    const walked = (await fresh().hashPaths(['hinted'])).get('hinted');
    assert.equal(hinted?.hash, walked?.hash);
    assert.equal(hinted?.files, 300);
    assert.equal(hinted?.size, walked?.size);

    // A folder that went, files and all: not something the record can be patched for; walked whole.
    rmSync(path.join(dir, '2'), { recursive: true });
    const gone = fresh();
    const after = (await gone.hashPaths(['hinted'], new Map([['hinted', ['2']]]))).get('hinted');
    assert.equal(gone.stats.statted, 199, 'walked whole: 99 files left in 0/, 100 in 1/');
    assert.equal(after?.files, 199);
  });

  test('two concurrent hashPaths calls, both big enough for worker threads, both finish', async () => {
    for (let i = 0; i < 1500; i++) {
      mkdirSync(path.join(root, 'twin', 'a'), { recursive: true });
      mkdirSync(path.join(root, 'twin', 'b'), { recursive: true });
      writeFileSync(path.join(root, 'twin', 'a', `${i}`), `a${i}`);
      writeFileSync(path.join(root, 'twin', 'b', `${i}`), `b${i}`);
    }
    const hasher = fresh();
    const [a, b] = await Promise.all([hasher.hashPaths(['twin/a']), hasher.hashPaths(['twin/b'])]);
    assert.equal(a.get('twin/a')?.files, 1500);
    assert.equal(b.get('twin/b')?.files, 1500);
    assert.notEqual(a.get('twin/a')?.hash, b.get('twin/b')?.hash);
  });

  test('a truncated folder record is a cache miss, not an error', async () => {
    const dirs = path.join(root, '.pipeline', 'dirs');
    for (const f of (await import('node:fs')).readdirSync(dirs)) writeFileSync(path.join(dirs, f), 'PLD1garbage');
    const hasher = fresh();
    const h = (await hasher.hashPaths(['many'])).get('many');
    assert.equal(h?.files, 2999);
    assert.equal(hasher.stats.hashedFiles, 2999);
  });
});
