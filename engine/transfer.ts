// Moving cache objects between the local cache and a remote: concurrent (`jobs`), skipping what the
// other side has, verified on arrival, reported as progress events.
//
// Order matters for crash safety: a stage's file objects go first, then folder manifests, then its
// run-cache entry. A run entry visible on the remote therefore always has all its objects there.

import { mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import pLimit from 'p-limit';
import { Cache } from './cache.ts';
import type { Logger } from './events.ts';
import { hashFileTo } from './hash-file.mjs';
import { hashListing } from './hashing.ts';
import type { LockEntry } from './lockfile.ts';
import type { Remote } from './remote.ts';

export interface TransferOptions {
  jobs: number;
  emit: Logger;
  signal: AbortSignal;
}

export interface TransferResult {
  transferred: number;
  skipped: number;
  bytes: number;
  failed: Array<{ key: string; error: string }>;
}

/** The keys a stage's lock entry needs, in push order: objects, manifests, then the run entry. */
export function keysForEntry(cache: Cache, stage: string, entry: LockEntry): { keys: string[]; missing: string[] } {
  const objects: string[] = [];
  const manifests: string[] = [];
  const missing: string[] = [];
  for (const [out, rec] of Object.entries(entry.outs)) {
    if (!rec.hash) continue;
    const keys = cache.keysFor(rec);
    if (!keys) {
      missing.push(out);
      continue;
    }
    for (const k of keys) (k.startsWith('dirs/') ? manifests : objects).push(k);
  }
  return { keys: [...new Set(objects), ...manifests, Cache.runKey(stage, entry.fingerprint)], missing };
}

/** Upload the keys the remote lacks, in the given order within each class. */
export async function push(
  cache: Cache,
  remote: Remote,
  keys: string[],
  opts: TransferOptions,
): Promise<TransferResult> {
  const present = await remote.has(keys);
  const todo = keys.filter((k) => !present.has(k) && cache.has(k));
  const total = todo.reduce((n, k) => n + statSync(cache.path(k)).size, 0);
  const result: TransferResult = { transferred: 0, skipped: keys.length - todo.length, bytes: 0, failed: [] };
  const limit = pLimit(opts.jobs);
  const progress = () =>
    opts.emit({
      type: 'transfer-progress',
      direction: 'push',
      remote: remote.name,
      done: result.transferred,
      total: todo.length,
      bytes: result.bytes,
      totalBytes: total,
    });
  // Run entries last, and only after every object upload has finished.
  const phase = async (subset: string[]) =>
    Promise.all(
      subset.map((k) =>
        limit(async () => {
          if (opts.signal.aborted) return;
          try {
            await remote.put(k, cache.path(k), opts.signal);
            result.transferred++;
            result.bytes += statSync(cache.path(k)).size;
          } catch (e) {
            result.failed.push({ key: k, error: (e as Error).message });
          }
          progress();
        }),
      ),
    );
  await phase(todo.filter((k) => !k.startsWith('runs/')));
  if (result.failed.length === 0) await phase(todo.filter((k) => k.startsWith('runs/')));
  return result;
}

/** Check a downloaded file against what its key promises before it enters the cache. */
function verifyDownload(key: string, file: string): void {
  if (key.startsWith('objects/')) {
    const expected = key.slice('objects/'.length).replace('/', '');
    const digest = Buffer.alloc(32);
    hashFileTo(file, Buffer.allocUnsafe(1 << 20), digest, 0);
    if (digest.toString('hex') !== expected) throw new Error(`downloaded ${key} does not match its hash`);
  } else if (key.startsWith('dirs/')) {
    const files = JSON.parse(readFileSync(file, 'utf8')).files as Array<[string, string]>;
    if (hashListing(files.map(([p, h]) => [p, h])) !== path.basename(key, '.json')) {
      throw new Error(`downloaded ${key} does not match its hash`);
    }
  } else JSON.parse(readFileSync(file, 'utf8'));
}

/** Download the keys the local cache lacks; each is verified, then renamed into place. */
export async function fetchKeys(
  cache: Cache,
  remote: Remote,
  keys: string[],
  opts: TransferOptions,
): Promise<TransferResult> {
  const todo = [...new Set(keys)].filter((k) => !cache.has(k));
  const result: TransferResult = { transferred: 0, skipped: keys.length - todo.length, bytes: 0, failed: [] };
  const limit = pLimit(opts.jobs);
  await Promise.all(
    todo.map((k) =>
      limit(async () => {
        if (opts.signal.aborted) return;
        const dest = cache.path(k);
        mkdirSync(path.dirname(dest), { recursive: true });
        const tmp = `${dest}.${process.pid}.${Math.random().toString(36).slice(2)}.download`;
        try {
          await remote.get(k, tmp, opts.signal);
          verifyDownload(k, tmp);
          result.bytes += statSync(tmp).size;
          renameSync(tmp, dest);
          result.transferred++;
        } catch (e) {
          rmSync(tmp, { force: true });
          result.failed.push({ key: k, error: (e as Error).message });
        }
        opts.emit({
          type: 'transfer-progress',
          direction: 'pull',
          remote: remote.name,
          done: result.transferred,
          total: todo.length,
          bytes: result.bytes,
        });
      }),
    ),
  );
  return result;
}

/** Fetch whatever the given out records need: manifests first (they name the objects), then objects. */
export async function fetchOuts(
  cache: Cache,
  remote: Remote,
  outs: LockEntry['outs'][],
  opts: TransferOptions,
): Promise<TransferResult> {
  const manifests = outs.flatMap((o) =>
    Object.values(o)
      .filter((r) => r.hash && r.files !== undefined)
      .map((r) => Cache.manifestKey(r.hash as string)),
  );
  const first = await fetchKeys(cache, remote, manifests, opts);
  const objects = outs.flatMap((o) =>
    Object.values(o).flatMap((r) => (cache.keysFor(r) ?? []).filter((k) => k.startsWith('objects/'))),
  );
  const second = await fetchKeys(cache, remote, objects, opts);
  return {
    transferred: first.transferred + second.transferred,
    skipped: first.skipped + second.skipped,
    bytes: first.bytes + second.bytes,
    failed: [...first.failed, ...second.failed],
  };
}
