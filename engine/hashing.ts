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
import { readRecord, recordFile, writeRecord } from './dir-cache.ts';
import { hashFileInto } from './hash-file.mjs';
import { RACY_NS, type StatCache } from './stat-cache.ts';
import type { ContentHash } from './types.ts';

export interface PathHash {
  kind: 'file' | 'dir' | 'glob' | 'missing';
  hash?: ContentHash;
  /** Total bytes. */
  size: number;
  /** Number of files (folders and globs). */
  files?: number;
  /** (path relative to the folder or, for a glob, to the root; hash) of every file, sorted. */
  listing?: () => Array<[string, ContentHash]>;
}

interface FileJob {
  abs: string;
  key: string;
  size: number;
  st: BigIntStats;
  hash?: ContentHash;
  /** Kept in a folder record (dir-cache.ts), not in the per-file stat cache. */
  inRecord?: boolean;
}

const POOL_MIN_FILES = 256;
/** Stats no file can have: written for files too recent to trust. */
const RACY_MARK = 2n ** 64n - 1n;

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
    // Plan every path first, so the files that need reading are hashed in one pass over the pool.
    const todo: FileJob[] = [];
    const finishers = new Map<string, () => PathHash>();
    for (const rel of new Set(relPaths)) {
      if (isDynamicPattern(rel)) finishers.set(rel, this.planGlob(rel, todo));
      else {
        const abs = path.join(this.root, rel);
        const st = statSync(abs, { bigint: true, throwIfNoEntry: false });
        if (!st) finishers.set(rel, () => ({ kind: 'missing', size: 0 }));
        else if (st.isDirectory()) finishers.set(rel, this.planDir(rel, abs, todo));
        else {
          const job = this.fileJob(abs, rel, st, todo);
          finishers.set(rel, () => ({ kind: 'file', hash: job.hash, size: job.size }));
        }
      }
    }
    await this.hashJobs(todo);
    return new Map([...finishers].map(([rel, finish]) => [rel, finish()]));
  }

  private fileJob(abs: string, key: string, st: BigIntStats, todo: FileJob[]): FileJob {
    this.stats.statted++;
    const job: FileJob = { abs, key, size: Number(st.size), st, hash: this.cache.lookup(key, st) };
    if (job.hash === undefined) todo.push(job);
    return job;
  }

  private planGlob(rel: string, todo: FileJob[]): () => PathHash {
    const matches = globSync(rel, { cwd: this.root, onlyFiles: true, dot: true, expandDirectories: false }).sort(
      byPath,
    );
    const jobs: FileJob[] = [];
    for (const m of matches) {
      const abs = path.join(this.root, m);
      const st = statSync(abs, { bigint: true, throwIfNoEntry: false });
      if (st) jobs.push(this.fileJob(abs, m, st, todo));
    }
    return () => {
      const entries = jobs.map((j) => [j.key, j.hash as ContentHash] as [string, ContentHash]);
      const size = jobs.reduce((n, j) => n + j.size, 0);
      return { kind: 'glob', hash: hashListing(entries), size, files: entries.length, listing: () => entries };
    };
  }

  /**
   * A folder: walk it, stat every file, and compare with the folder's record (dir-cache.ts) index by
   * index when the listing is unchanged. Only files whose stat differs are read.
   */
  private planDir(rel: string, abs: string, todo: FileJob[]): () => PathHash {
    const names = listFiles(abs);
    const joined = names.join('\n');
    const recFile = recordFile(this.root, rel);
    const rec = readRecord(recFile);
    const sameNames = rec !== undefined && rec.count === names.length && rec.names === joined;
    const byName = !sameNames && rec ? new Map(rec.names.split('\n').map((n, i) => [n, i])) : undefined;
    const stats = new BigUint64Array(names.length * 4);
    const hashes = Buffer.alloc(names.length * 32);
    const jobs = new Map<number, FileJob>();
    let size = 0;
    let changed = !sameNames;
    for (let i = 0; i < names.length; i++) {
      const fileAbs = `${abs}/${names[i]}`;
      const st = statSync(fileAbs, { bigint: true, throwIfNoEntry: false });
      if (!st) {
        changed = true; // vanished during the walk: hashed as empty, and the record is not trusted
        continue;
      }
      this.stats.statted++;
      size += Number(st.size);
      stats[i * 4] = st.size;
      stats[i * 4 + 1] = st.mtimeNs;
      stats[i * 4 + 2] = st.ino;
      stats[i * 4 + 3] = st.ctimeNs;
      const j = sameNames ? i : byName?.get(names[i]);
      if (
        rec !== undefined &&
        j !== undefined &&
        rec.stats[j * 4] === st.size &&
        rec.stats[j * 4 + 1] === st.mtimeNs &&
        rec.stats[j * 4 + 2] === st.ino &&
        rec.stats[j * 4 + 3] === st.ctimeNs
      ) {
        rec.hashes.copy(hashes, i * 32, j * 32, j * 32 + 32);
        continue;
      }
      changed = true;
      const job: FileJob = { abs: fileAbs, key: `${rel}/${names[i]}`, size: Number(st.size), st, inRecord: true };
      jobs.set(i, job);
      todo.push(job);
    }
    return () => {
      if (!changed && rec) {
        const hash = rec.hash.toString('hex') as ContentHash;
        return { kind: 'dir', hash, size, files: names.length, listing: () => listingOf(names, hashes) };
      }
      const racyAfter = BigInt(Date.now()) * 1_000_000n - RACY_NS;
      for (const [i, job] of jobs) {
        hashes.write(job.hash as string, i * 32, 'hex');
        // A file changed within the racy window is recorded with impossible stats: re-read next time.
        if (job.st.ctimeNs > racyAfter || job.st.mtimeNs > racyAfter) stats.fill(RACY_MARK, i * 4, i * 4 + 4);
      }
      const entries = listingOf(names, hashes);
      const hash = hashListing(entries);
      writeRecord(recFile, { names: joined, count: names.length, stats, hashes, hash: Buffer.from(hash, 'hex'), size });
      return { kind: 'dir', hash, size, files: names.length, listing: () => entries };
    };
  }

  private async hashJobs(todo: FileJob[]): Promise<void> {
    if (todo.length === 0) return;
    this.stats.hashedFiles += todo.length;
    this.stats.hashedBytes += todo.reduce((n, j) => n + j.size, 0);
    const workers = Math.min(availableParallelism(), 4);
    let hashes: Array<string | { error: string }>;
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
    for (const [i, job] of todo.entries()) {
      const h = hashes[i];
      if (typeof h !== 'string') throw new Error(`cannot read ${job.key}: ${h.error}`);
      job.hash = h as ContentHash;
      if (!job.inRecord) this.cache.store(job.key, job.st, job.hash, at);
    }
  }
}

function listingOf(names: string[], hashes: Buffer): Array<[string, ContentHash]> {
  return names.map((n, i) => [n, hashes.toString('hex', i * 32, i * 32 + 32) as ContentHash]);
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
