// The per-image embedding cache: an image's embedding is computed once per (image bytes, model files,
// dtype, preprocessing, onnxruntime version) and kept. It is a persisted out of the embed stage, so it
// lives in the engine's content-addressed cache and travels with `push` / `pull` like any out.
//
//   artifacts/embed-cache/<key>/key.json        what <key> stands for (model, file hashes, dtype, …)
//   artifacts/embed-cache/<key>/000001.bin      a shard: header, then n image hashes, then n rows
//
//   shard = "EMBC" u32 version u32 dim u32 n | n x 32-byte BLAKE3 of the image | n x dim float32
//
// Shards are written whole (temp file + rename) every SHARD_ROWS new embeddings, so an interrupted run
// keeps what it finished and a rerun resumes. Only the index (hash -> shard, row) is held in memory;
// rows are read back one at a time, so memory does not grow with the dataset.

import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { blake3 } from '@napi-rs/blake-hash';

const MAGIC = 0x43424d45; // "EMBC" little-endian
const VERSION = 1;
const HEADER = 16;
const HASH = 32;
/** New embeddings per shard: a Ctrl-C loses at most this many. */
export const SHARD_ROWS = 512;
/** More shards than this are merged into one when the cache is opened. */
const MAX_SHARDS = 64;

export const imageHash = (bytes: Buffer): string => blake3(bytes).toString('hex');

/** A stable short name for a cache key: the hash of its parts, in a fixed key order. */
export function cacheKey(parts: Record<string, unknown>): string {
  const sorted = Object.fromEntries(Object.entries(parts).sort(([a], [b]) => a.localeCompare(b)));
  return blake3(JSON.stringify(sorted)).toString('hex').slice(0, 20);
}

interface Where {
  shard: string;
  row: number;
  n: number;
}

export class EmbedCache {
  readonly dir: string;
  dim = 0;
  private index = new Map<string, Where>();
  private pending: Array<[string, Float32Array]> = [];
  private nextShard = 1;
  private fds = new Map<string, number>();

  constructor(root: string, parts: Record<string, unknown>) {
    this.dir = path.join(root, cacheKey(parts));
    mkdirSync(this.dir, { recursive: true });
    const keyFile = path.join(this.dir, 'key.json');
    if (!existsSync(keyFile)) writeFileSync(keyFile, `${JSON.stringify(parts, null, 2)}\n`);
    for (const f of readdirSync(this.dir)) if (f.endsWith('.tmp')) rmSync(path.join(this.dir, f));
    this.load();
    if (this.shards().length > MAX_SHARDS) this.compact();
  }

  has(hash: string): boolean {
    return this.index.has(hash);
  }

  /** The cached row for `hash` (copied into `into`), or false. */
  read(hash: string, into: Float32Array): boolean {
    const w = this.index.get(hash);
    if (!w) return false;
    const file = path.join(this.dir, w.shard);
    let fd = this.fds.get(file);
    if (fd === undefined) {
      fd = openSync(file, 'r');
      this.fds.set(file, fd);
    }
    const bytes = this.dim * 4;
    const got = readSync(
      fd,
      new Uint8Array(into.buffer, into.byteOffset, bytes),
      0,
      bytes,
      HEADER + w.n * HASH + w.row * bytes,
    );
    if (got !== bytes) throw new Error(`${file} is truncated (row ${w.row}); delete it and rerun to recompute`);
    return true;
  }

  add(hash: string, row: Float32Array): void {
    if (this.dim === 0) this.dim = row.length;
    if (row.length !== this.dim) throw new Error(`embedding of ${row.length} values, the cache holds ${this.dim}`);
    if (this.index.has(hash)) return;
    this.pending.push([hash, Float32Array.from(row)]);
    if (this.pending.length >= SHARD_ROWS) this.flush();
  }

  /** Write what was added since the last flush as a new shard. */
  flush(): void {
    if (this.pending.length === 0) return;
    const name = `${String(this.nextShard++).padStart(6, '0')}.bin`;
    this.writeShard(name, this.pending);
    this.pending.forEach(([h], row) => {
      this.index.set(h, { shard: name, row, n: this.pending.length });
    });
    this.pending = [];
  }

  close(): void {
    this.flush();
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }

  private shards(): string[] {
    return readdirSync(this.dir)
      .filter((f) => /^\d{6}\.bin$/.test(f))
      .sort();
  }

  private load(): void {
    for (const name of this.shards()) {
      const file = path.join(this.dir, name);
      const buf = readFileSync(file);
      const bad = (why: string) =>
        new Error(`embedding cache shard ${file} is ${why}; delete it and rerun to recompute`);
      if (buf.length < HEADER || buf.readUInt32LE(0) !== MAGIC) throw bad('not a shard');
      if (buf.readUInt32LE(4) !== VERSION) throw bad(`version ${buf.readUInt32LE(4)}`);
      const dim = buf.readUInt32LE(8);
      const n = buf.readUInt32LE(12);
      if (buf.length !== HEADER + n * (HASH + dim * 4)) throw bad('truncated');
      if (this.dim && dim !== this.dim) throw bad(`of width ${dim}, others are ${this.dim}`);
      this.dim = dim;
      for (let row = 0; row < n; row++) {
        const h = buf.toString('hex', HEADER + row * HASH, HEADER + (row + 1) * HASH);
        this.index.set(h, { shard: name, row, n });
      }
      this.nextShard = Math.max(this.nextShard, Number.parseInt(name, 10) + 1);
    }
  }

  private writeShard(name: string, rows: Array<[string, Float32Array]>): void {
    const n = rows.length;
    const buf = Buffer.alloc(HEADER + n * (HASH + this.dim * 4));
    buf.writeUInt32LE(MAGIC, 0);
    buf.writeUInt32LE(VERSION, 4);
    buf.writeUInt32LE(this.dim, 8);
    buf.writeUInt32LE(n, 12);
    rows.forEach(([h, v], i) => {
      buf.write(h, HEADER + i * HASH, 'hex');
      Buffer.from(v.buffer, v.byteOffset, v.byteLength).copy(buf, HEADER + n * HASH + i * this.dim * 4);
    });
    const file = path.join(this.dir, name);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, buf);
    renameSync(tmp, file);
  }

  /** Merge every shard into one, so opening stays one read per few thousand rows. */
  private compact(): void {
    const old = this.shards();
    const rows: Array<[string, Float32Array]> = [];
    for (const h of this.index.keys()) {
      const v = new Float32Array(this.dim);
      this.read(h, v);
      rows.push([h, v]);
    }
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
    const name = `${String(this.nextShard++).padStart(6, '0')}.bin`;
    this.writeShard(name, rows);
    for (const f of old) rmSync(path.join(this.dir, f));
    this.index.clear();
    rows.forEach(([h], row) => {
      this.index.set(h, { shard: name, row, n: rows.length });
    });
  }
}
