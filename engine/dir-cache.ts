// The stat cache of a folder dep or out, one binary record per folder in `.pipeline/dirs/`. A no-op
// `status` on a 70,000-file folder must cost little more than stat'ing the files, so a record is laid
// out to be compared without parsing: the sorted names as one string (compared whole), the stats as a
// Float64Array (size, mtime ms, inode, ctime ms per file: what a plain `stat` gives, without the
// BigInt objects that a nanosecond stat costs per file) and the hashes as 32 bytes per file. When
// nothing changed, the folder's hash is read from the record instead of being recomputed.
//
//   "PLD2" | count u32 | names bytes u32 | names (utf8, '\n'-joined) | pad to 8
//   | stats: count*4 f64 | hashes: count*32 | folder hash: 32 | total size f64

import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { blake3 } from './blake3.mjs';

const MAGIC = 'PLD2';

export interface DirRecord {
  names: string;
  count: number;
  stats: Float64Array;
  hashes: Buffer;
  hash: Buffer;
  size: number;
}

export function recordFile(root: string, relDir: string): string {
  const id = blake3(relDir).toString('hex').slice(0, 24);
  return path.join(root, '.pipeline', 'dirs', `${id}.bin`);
}

export function readRecord(file: string): DirRecord | undefined {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch {
    return undefined;
  }
  if (buf.length < 12 || buf.toString('latin1', 0, 4) !== MAGIC) return undefined;
  const count = buf.readUInt32LE(4);
  const namesLen = buf.readUInt32LE(8);
  const statsAt = Math.ceil((12 + namesLen) / 8) * 8;
  const hashesAt = statsAt + count * 32;
  const endAt = hashesAt + count * 32;
  if (buf.length !== endAt + 40) return undefined; // truncated or foreign: just a cache miss
  // Copy the stats into an aligned array (the file buffer's offset may not be 8-aligned).
  const stats = new Float64Array(count * 4);
  Buffer.from(stats.buffer).set(buf.subarray(statsAt, hashesAt));
  return {
    names: buf.toString('utf8', 12, 12 + namesLen),
    count,
    stats,
    hashes: buf.subarray(hashesAt, endAt),
    hash: buf.subarray(endAt, endAt + 32),
    size: buf.readDoubleLE(endAt + 32),
  };
}

export function writeRecord(file: string, r: DirRecord): void {
  const names = Buffer.from(r.names, 'utf8');
  const statsAt = Math.ceil((12 + names.length) / 8) * 8;
  const buf = Buffer.alloc(statsAt + r.count * 64 + 40);
  buf.write(MAGIC, 0, 'latin1');
  buf.writeUInt32LE(r.count, 4);
  buf.writeUInt32LE(names.length, 8);
  names.copy(buf, 12);
  Buffer.from(r.stats.buffer, r.stats.byteOffset, r.stats.byteLength).copy(buf, statsAt);
  r.hashes.copy(buf, statsAt + r.count * 32);
  r.hash.copy(buf, statsAt + r.count * 64);
  buf.writeDoubleLE(r.size, statsAt + r.count * 64 + 32);
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, buf);
  renameSync(tmp, file);
}
