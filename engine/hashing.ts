// Content hashes of deps and outs: a file is BLAKE3 of its bytes; a folder (or a glob) is BLAKE3 of its
// sorted `relative path \0 hash \n` list, so renaming a file inside a folder changes the folder's hash.
// Files the stat cache vouches for are not read; the rest are hashed on worker threads when there are
// enough of them to pay for the threads' start-up.

import { type BigIntStats, type Dirent, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { blake3 } from '@napi-rs/blake-hash';
import { globSync, isDynamicPattern } from 'tinyglobby';
import { readRecord, recordFile, writeRecord } from './dir-cache.ts';
import { HashPool } from './hash-pool.ts';
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

/** One `hashPaths` call's pool and the read errors it collected. */
interface HashRun {
  pool: HashPool;
  errors: string[];
}

interface FileJob {
  size: number;
  hash?: ContentHash;
}

/** Stats no file can have: written for files too recent to trust. */
const RACY_MARK = 2n ** 64n - 1n;

export const hashBytes = (data: string | Buffer): ContentHash => blake3(data).toString('hex') as ContentHash;

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
    // Plan every path first; files that need reading go to the pool as they are found. One pool per
    // call: stages hash concurrently, and one call's drain must not stop another's workers.
    const run: HashRun = { pool: new HashPool(), errors: [] };
    const finishers = new Map<string, () => PathHash>();
    for (const rel of new Set(relPaths)) {
      if (isDynamicPattern(rel)) finishers.set(rel, this.planGlob(run, rel));
      else {
        const abs = path.join(this.root, rel);
        const st = statSync(abs, { bigint: true, throwIfNoEntry: false });
        if (!st) finishers.set(rel, () => ({ kind: 'missing', size: 0 }));
        else if (st.isDirectory()) finishers.set(rel, this.planDir(run, rel, abs));
        else {
          const job = this.fileJob(run, abs, rel, st);
          finishers.set(rel, () => ({ kind: 'file', hash: job.hash, size: job.size }));
        }
      }
    }
    await run.pool.drain();
    if (run.errors.length > 0) throw new Error(`cannot read ${run.errors[0]}`);
    return new Map([...finishers].map(([rel, finish]) => [rel, finish()]));
  }

  /**
   * Record hashes the engine already knows (it just wrote these files from verified cache objects), so
   * the next status need not read them. Unlike hashes found by reading, these are trusted even inside
   * the racy window: the engine itself wrote the bytes a moment ago.
   */
  remember(rel: string, known: { hash: ContentHash; files?: Array<[string, ContentHash]> }): void {
    const abs = path.join(this.root, rel);
    if (!known.files) {
      const st = statSync(abs, { bigint: true, throwIfNoEntry: false });
      if (st) this.cache.store(rel, st, known.hash, st.ctimeNs + RACY_NS);
      return;
    }
    const entries = [...known.files].sort(([a], [b]) => byPath(a, b));
    const stats = new BigUint64Array(entries.length * 4);
    const hashes = Buffer.alloc(entries.length * 32);
    let size = 0;
    for (const [i, [name, hash]] of entries.entries()) {
      const st = statSync(`${abs}/${name}`, { bigint: true });
      stats.set([st.size, st.mtimeNs, st.ino, st.ctimeNs], i * 4);
      hashes.write(hash, i * 32, 'hex');
      size += Number(st.size);
    }
    const names = entries.map(([n]) => n).join('\n');
    writeRecord(recordFile(this.root, rel), {
      names,
      count: entries.length,
      stats,
      hashes,
      hash: Buffer.from(known.hash, 'hex'),
      size,
    });
  }

  /** Queue a file for hashing; `onHashed` gets its digest and the stats of the bytes read. */
  private read(
    run: HashRun,
    abs: string,
    key: string,
    onHashed: (digest: Buffer, stats: BigUint64Array) => void,
  ): void {
    this.stats.hashedFiles++;
    run.pool.add(abs, (h) => {
      if (h instanceof Error) run.errors.push(`${key}: ${h.message}`);
      else {
        this.stats.hashedBytes += Number(h.stats[0]);
        onHashed(h.digest, h.stats);
      }
    });
  }

  /** A single file through the per-file stat cache. */
  private fileJob(run: HashRun, abs: string, key: string, st: BigIntStats): FileJob {
    this.stats.statted++;
    const job: FileJob = { size: Number(st.size), hash: this.cache.lookup(key, st) };
    if (job.hash === undefined) {
      const at = BigInt(Date.now()) * 1_000_000n;
      this.read(run, abs, key, (d) => {
        job.hash = d.toString('hex') as ContentHash;
        this.cache.store(key, st, job.hash, at);
      });
    }
    return job;
  }

  private planGlob(run: HashRun, rel: string): () => PathHash {
    const matches = globSync(rel, { cwd: this.root, onlyFiles: true, dot: true, expandDirectories: false }).sort(
      byPath,
    );
    const jobs: Array<[string, FileJob]> = [];
    for (const m of matches) {
      const abs = path.join(this.root, m);
      const st = statSync(abs, { bigint: true, throwIfNoEntry: false });
      if (st) jobs.push([m, this.fileJob(run, abs, m, st)]);
    }
    return () => {
      const entries = jobs.map(([m, j]) => [m, j.hash as ContentHash] as [string, ContentHash]);
      const size = jobs.reduce((n, [, j]) => n + j.size, 0);
      return { kind: 'glob', hash: hashListing(entries), size, files: entries.length, listing: () => entries };
    };
  }

  /**
   * A folder: walk it, stat every file, and compare with the folder's record (dir-cache.ts) index by
   * index when the listing is unchanged. Only files whose stat differs are read.
   */
  private planDir(run: HashRun, rel: string, abs: string): () => PathHash {
    const names = listFiles(abs);
    const joined = names.join('\n');
    const recFile = recordFile(this.root, rel);
    const rec = readRecord(recFile);
    const sameNames = rec !== undefined && rec.count === names.length && rec.names === joined;
    const byName = !sameNames && rec ? new Map(rec.names.split('\n').map((n, i) => [n, i])) : undefined;
    const stats = new BigUint64Array(names.length * 4);
    const hashes = Buffer.alloc(names.length * 32);
    const racyAfter = BigInt(Date.now()) * 1_000_000n - RACY_NS;
    let size = 0;
    let changed = !sameNames;
    // Without a record (first time), every file must be read anyway: skip the stat here and take it
    // from the open file in the hashing thread. Results land in `hashes` / `stats` directly.
    const cold = rec === undefined;
    const sink = { hashes, stats, errors: run.errors, keyOf: (i: number) => `${rel}/${names[i]}` };
    const queued: number[] = [];
    for (let i = 0; i < names.length; i++) {
      const fileAbs = `${abs}/${names[i]}`;
      if (!cold) {
        const st = statSync(fileAbs, { bigint: true, throwIfNoEntry: false });
        if (!st) {
          changed = true; // vanished during the walk: hashed as empty, and the record is not trusted
          continue;
        }
        this.stats.statted++;
        const j = sameNames ? i : byName?.get(names[i]);
        if (
          j !== undefined &&
          rec.stats[j * 4] === st.size &&
          rec.stats[j * 4 + 1] === st.mtimeNs &&
          rec.stats[j * 4 + 2] === st.ino &&
          rec.stats[j * 4 + 3] === st.ctimeNs
        ) {
          stats.set(rec.stats.subarray(j * 4, j * 4 + 4), i * 4);
          rec.hashes.copy(hashes, i * 32, j * 32, j * 32 + 32);
          continue;
        }
        changed = true;
      }
      this.stats.hashedFiles++;
      queued.push(i);
      run.pool.add(fileAbs, sink, i);
    }
    const racySizes = new Map<number, bigint>();
    /** Sizes, counts and racy marks, once every queued file is back. */
    const settle = () => {
      for (const i of queued) {
        this.stats.hashedBytes += Number(stats[i * 4]);
        // Changed within the racy window: recorded with impossible stats, so it is re-read next time.
        if (stats[i * 4 + 3] > racyAfter || stats[i * 4 + 1] > racyAfter) {
          const size = stats[i * 4];
          stats.fill(RACY_MARK, i * 4, i * 4 + 4);
          racySizes.set(i, size);
        }
      }
      if (cold) this.stats.statted += names.length;
      for (let i = 0; i < names.length; i++) size += Number(racySizes.get(i) ?? stats[i * 4]);
    };
    return () => {
      settle();
      if (!changed && rec) {
        const hash = rec.hash.toString('hex') as ContentHash;
        return { kind: 'dir', hash, size, files: names.length, listing: () => listingOf(names, hashes) };
      }
      const entries = listingOf(names, hashes);
      const hash = hashListing(entries);
      writeRecord(recFile, { names: joined, count: names.length, stats, hashes, hash: Buffer.from(hash, 'hex'), size });
      return { kind: 'dir', hash, size, files: names.length, listing: () => entries };
    };
  }
}

function listingOf(names: string[], hashes: Buffer): Array<[string, ContentHash]> {
  return names.map((n, i) => [n, hashes.toString('hex', i * 32, i * 32 + 32) as ContentHash]);
}
