// Content hashes of deps and outs: a file is BLAKE3 of its bytes; a folder (or a glob) is BLAKE3 of its
// sorted `relative path \0 hash \n` list, so renaming a file inside a folder changes the folder's hash.
// Files the stat cache vouches for are not read; the rest are hashed on worker threads when there are
// enough of them to pay for the threads' start-up.

import { type BigIntStats, type Dirent, readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { blake3 } from '@napi-rs/blake-hash';
import { globSync, isDynamicPattern } from 'tinyglobby';
import { hashFileInto } from './hash-file.mjs';
import type { StatCache } from './stat-cache.ts';
import type { ContentHash } from './types.ts';

export interface PathHash {
  kind: 'file' | 'dir' | 'glob' | 'missing';
  hash?: ContentHash;
  /** Total bytes. */
  size: number;
  /** Number of files (folders and globs). */
  files?: number;
  /** (path relative to the folder or, for a glob, to the root; hash) of every file, sorted. */
  entries?: Array<[string, ContentHash]>;
}

interface FileJob {
  abs: string;
  key: string;
  size: number;
  st: BigIntStats;
  hash?: ContentHash;
}

const POOL_MIN_FILES = 256;

export const hashBytes = (data: string | Uint8Array): ContentHash => blake3(data).toString('hex') as ContentHash;

/** Hash of a sorted (relative path, hash) list: the identity of a folder's content. */
export function hashListing(entries: Array<[string, string]>): ContentHash {
  return hashBytes(entries.map(([p, h]) => `${p}\0${h}\n`).join(''));
}

const byPath = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Every file under `dir`, relative to it with '/' separators, following symlinks. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (abs: string, rel: string) => {
    let dirents: Dirent[];
    try {
      dirents = readdirSync(abs, { withFileTypes: true });
    } catch {
      return; // vanished while we walked: the caller sees fewer files, and a later hash differs
    }
    for (const d of dirents) {
      const childAbs = `${abs}/${d.name}`;
      const childRel = rel ? `${rel}/${d.name}` : d.name;
      let isDir = d.isDirectory();
      if (d.isSymbolicLink()) {
        try {
          isDir = statSync(childAbs).isDirectory();
        } catch {
          continue; // dangling link: not content
        }
      }
      if (isDir) walk(childAbs, childRel);
      else out.push(childRel);
    }
  };
  walk(dir, '');
  return out.sort(byPath);
}

/** What a command cost in I/O: files statted, and files (bytes) actually read and hashed. */
export interface HashStats {
  statted: number;
  hashedFiles: number;
  hashedBytes: number;
}

export class Hasher {
  readonly stats: HashStats = { statted: 0, hashedFiles: 0, hashedBytes: 0 };

  constructor(
    private readonly root: string,
    private readonly cache: StatCache,
  ) {}

  /** Hash each project-relative path (file, folder or glob). Missing paths come back as `missing`. */
  async hashPaths(relPaths: string[]): Promise<Map<string, PathHash>> {
    const jobs: FileJob[] = [];
    const plans = new Map<string, { kind: PathHash['kind']; rels: string[]; jobs: FileJob[] }>();
    const addJob = (abs: string, key: string): FileJob | undefined => {
      try {
        const st = statSync(abs, { bigint: true });
        const job: FileJob = { abs, key, size: Number(st.size), st, hash: this.cache.lookup(key, st) };
        this.stats.statted++;
        jobs.push(job);
        return job;
      } catch {
        return undefined;
      }
    };
    for (const rel of relPaths) {
      if (plans.has(rel)) continue;
      if (isDynamicPattern(rel)) {
        const matches = globSync(rel, { cwd: this.root, onlyFiles: true, dot: true, expandDirectories: false }).sort(
          byPath,
        );
        const fileJobs = matches.map((m) => addJob(path.join(this.root, m), m)).filter((j) => j !== undefined);
        plans.set(rel, { kind: 'glob', rels: matches, jobs: fileJobs });
        continue;
      }
      const abs = path.join(this.root, rel);
      let isDir: boolean;
      try {
        isDir = statSync(abs).isDirectory();
      } catch {
        plans.set(rel, { kind: 'missing', rels: [], jobs: [] });
        continue;
      }
      if (isDir) {
        const rels = listFiles(abs);
        const fileJobs = rels.map((r) => addJob(`${abs}/${r}`, `${rel}/${r}`)).filter((j) => j !== undefined);
        plans.set(rel, { kind: 'dir', rels, jobs: fileJobs });
      } else {
        const job = addJob(abs, rel);
        plans.set(rel, job ? { kind: 'file', rels: [rel], jobs: [job] } : { kind: 'missing', rels: [], jobs: [] });
      }
    }

    await this.hashMissing(jobs.filter((j) => j.hash === undefined));

    const result = new Map<string, PathHash>();
    for (const [rel, plan] of plans) {
      const size = plan.jobs.reduce((n, j) => n + j.size, 0);
      if (plan.kind === 'missing') result.set(rel, { kind: 'missing', size: 0 });
      else if (plan.kind === 'file') result.set(rel, { kind: 'file', hash: plan.jobs[0].hash, size });
      else {
        const prefix = plan.kind === 'dir' ? rel.length + 1 : 0;
        const entries = plan.jobs.map((j) => [j.key.slice(prefix), j.hash as ContentHash] as [string, ContentHash]);
        result.set(rel, { kind: plan.kind, hash: hashListing(entries), size, files: entries.length, entries });
      }
    }
    return result;
  }

  private async hashMissing(todo: FileJob[]): Promise<void> {
    if (todo.length === 0) return;
    this.stats.hashedFiles += todo.length;
    this.stats.hashedBytes += todo.reduce((n, j) => n + j.size, 0);
    let hashes: Array<string | { error: string }>;
    const workers = Math.min(availableParallelism(), 4);
    if (todo.length < POOL_MIN_FILES || workers < 2) {
      const buf = Buffer.allocUnsafe(1 << 20);
      hashes = todo.map((j) => {
        try {
          return hashFileInto(j.abs, buf) as string;
        } catch (e) {
          return { error: (e as Error).message };
        }
      });
    } else {
      hashes = await hashOnWorkers(
        todo.map((j) => j.abs),
        workers,
      );
    }
    const at = BigInt(Date.now()) * 1_000_000n;
    todo.forEach((job, i) => {
      const h = hashes[i];
      if (typeof h !== 'string') throw new Error(`cannot read ${job.key}: ${h.error}`);
      job.hash = h as ContentHash;
      this.cache.store(job.key, job.st, job.hash, at);
    });
  }
}

/** Split `files` over `n` worker threads (interleaved, so big and small files spread evenly). */
async function hashOnWorkers(files: string[], n: number): Promise<Array<string | { error: string }>> {
  const slices: string[][] = Array.from({ length: n }, () => []);
  for (const [i, f] of files.entries()) slices[i % n].push(f);
  const results = await Promise.all(
    slices.map(
      (slice) =>
        new Promise<Array<string | { error: string }>>((resolve, reject) => {
          const w = new Worker(new URL('./hash-worker.mjs', import.meta.url), { workerData: { files: slice } });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    ),
  );
  return files.map((_, i) => results[i % n][Math.floor(i / n)]);
}
