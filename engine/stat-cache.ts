// The stat cache: (size, mtime ns, inode, ctime ns) -> content hash, in `.pipeline/stat-cache.json`,
// so an unchanged file is never re-read. ctime and inode make it safe against a file replaced by one of
// equal size and mtime (a copy with `touch -r`, an atomic rename): both change even when mtime is forged.
//
// "Racy" entries (ctime within RACY_NS of when we hashed) are not kept: a write landing in the same
// timestamp tick as our read would otherwise go unseen (git's racy-clean problem).

import type { BigIntStats } from 'node:fs';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ContentHash } from './types.ts';

const VERSION = 1;
export const RACY_MS = 2000;
export const RACY_NS = BigInt(RACY_MS) * 1_000_000n;

type Entry = [size: number, mtimeNs: string, ino: string, ctimeNs: string, hash: string];

export class StatCache {
  private entries: Record<string, Entry> = {};
  private dirty = false;

  constructor(private readonly file: string) {
    try {
      const doc = JSON.parse(readFileSync(file, 'utf8'));
      if (doc.version === VERSION) this.entries = doc.entries;
    } catch {
      // Missing or unreadable: start empty; it is only a cache.
    }
  }

  lookup(key: string, st: BigIntStats): ContentHash | undefined {
    const e = this.entries[key];
    if (!e) return undefined;
    return e[0] === Number(st.size) &&
      e[1] === String(st.mtimeNs) &&
      e[2] === String(st.ino) &&
      e[3] === String(st.ctimeNs)
      ? (e[4] as ContentHash)
      : undefined;
  }

  store(key: string, st: BigIntStats, hash: ContentHash, hashedAtNs: bigint): void {
    if (hashedAtNs - st.ctimeNs < RACY_NS || hashedAtNs - st.mtimeNs < RACY_NS) {
      if (this.entries[key]) {
        delete this.entries[key];
        this.dirty = true;
      }
      return;
    }
    this.entries[key] = [Number(st.size), String(st.mtimeNs), String(st.ino), String(st.ctimeNs), hash];
    this.dirty = true;
  }

  /** Atomic write (temp + rename) so a concurrent `status` never reads half a file. */
  save(): void {
    if (!this.dirty) return;
    mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ version: VERSION, entries: this.entries }));
    renameSync(tmp, this.file);
    this.dirty = false;
  }
}
