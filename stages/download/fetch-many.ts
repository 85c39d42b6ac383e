// Many downloads at once (`data.jobs`), with one progress line (files, bytes, rate). A file already at
// its destination was verified before it got there (fetch-file renames only verified files), so it is
// skipped: raising `data.limit` fetches only the new ones. Failures are collected, not fatal one by
// one: the run ends with every file that could be fetched on disk and the list of those that could not.

import { mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import pLimit from 'p-limit';
import { fetchFile } from './fetch-file.ts';

export interface FetchItem {
  url: string;
  dest: string;
  size?: number;
  md5?: string;
}

export interface FetchManyProgress {
  done: number;
  total: number;
  bytes: number;
  bytesPerSecond: number;
}

export interface FetchManyResult {
  fetched: number;
  skipped: number;
  bytes: number;
}

export async function fetchMany(
  items: FetchItem[],
  opts: { jobs: number; signal?: AbortSignal; onProgress?: (p: FetchManyProgress) => void },
): Promise<FetchManyResult> {
  // One readdir per folder instead of one stat per file: with tens of thousands of files, most of
  // them absent on a first run, per-file lookups cost more than the downloads' own bookkeeping.
  const present = new Map<string, Set<string>>();
  const inFolder = (dir: string) => {
    let names = present.get(dir);
    if (!names) {
      mkdirSync(dir, { recursive: true });
      names = new Set(readdirSync(dir));
      present.set(dir, names);
    }
    return names;
  };
  const todo = items.filter(
    (i) =>
      !(
        inFolder(path.dirname(i.dest)).has(path.basename(i.dest)) &&
        (i.size === undefined || statSync(i.dest).size === i.size)
      ),
  );
  const result: FetchManyResult = { fetched: 0, skipped: items.length - todo.length, bytes: 0 };
  const failures: string[] = [];
  const started = performance.now();
  let done = result.skipped;
  const report = () =>
    opts.onProgress?.({
      done,
      total: items.length,
      bytes: result.bytes,
      bytesPerSecond: result.bytes / Math.max(1e-3, (performance.now() - started) / 1000),
    });
  report();
  const limit = pLimit(Math.max(1, opts.jobs));
  await Promise.all(
    todo.map((item) =>
      limit(async () => {
        if (opts.signal?.aborted) return;
        try {
          await fetchFile(item.url, item.dest, {
            size: item.size,
            md5: item.md5,
            signal: opts.signal,
            dirExists: true,
            noPart: !inFolder(path.dirname(item.dest)).has(`${path.basename(item.dest)}.part`),
            onBytes: (n) => {
              result.bytes += n;
            },
          });
          result.fetched++;
        } catch (e) {
          if (opts.signal?.aborted) return;
          failures.push((e as Error).message);
        }
        done++;
        report();
      }),
    ),
  );
  opts.signal?.throwIfAborted();
  if (failures.length > 0) {
    throw new Error(
      `${failures.length} of ${items.length} files could not be downloaded (the others are kept; rerun to resume):\n  ${failures.slice(0, 5).join('\n  ')}`,
    );
  }
  return result;
}
