// NumPy's .npy format (version 1.0) for float32 matrices: what `np.load` reads with no custom code.
//
//   \x93NUMPY 1 0 <u16 header length> {'descr': '<f4', 'fortran_order': False, 'shape': (N, D), }  \n
//   N * D little-endian float32, row-major
//
// The header is padded so the data starts on a 64-byte boundary. A writer streams rows (the embed stage
// never holds the whole matrix), so the header is written first with the final row count.

import { closeSync, openSync, readSync, writeSync } from 'node:fs';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00]);

export function npyHeader(shape: number[]): Buffer {
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${dims}, }`;
  const unpadded = MAGIC.length + 2 + dict.length + 1;
  const pad = (64 - (unpadded % 64)) % 64;
  const text = `${dict}${' '.repeat(pad)}\n`;
  const len = Buffer.alloc(2);
  len.writeUInt16LE(text.length);
  return Buffer.concat([MAGIC, len, Buffer.from(text, 'latin1')]);
}

/** Writes rows in order; `close()` checks that exactly the promised number arrived. */
export class NpyWriter {
  private fd: number;
  private rowsWritten = 0;
  constructor(
    readonly file: string,
    readonly rows: number,
    readonly cols: number,
  ) {
    this.fd = openSync(file, 'w');
    writeSync(this.fd, npyHeader([rows, cols]));
  }
  write(row: Float32Array): void {
    if (row.length !== this.cols) throw new Error(`npy row of ${row.length} values, expected ${this.cols}`);
    writeSync(this.fd, new Uint8Array(row.buffer, row.byteOffset, row.byteLength));
    this.rowsWritten++;
  }
  close(): void {
    closeSync(this.fd);
    if (this.rowsWritten !== this.rows) {
      throw new Error(`${this.file}: wrote ${this.rowsWritten} rows, promised ${this.rows}`);
    }
  }
}

export interface NpyMatrix {
  shape: number[];
  data: Float32Array;
}

/** Read a little-endian float32 .npy (C order), as written above or by NumPy. */
export function readNpy(file: string): NpyMatrix {
  const fd = openSync(file, 'r');
  try {
    const pre = Buffer.alloc(10);
    readSync(fd, pre, 0, 10, 0);
    if (!pre.subarray(0, 6).equals(MAGIC.subarray(0, 6))) throw new Error(`${file} is not a .npy file`);
    const major = pre[6];
    const headerLen = major === 1 ? pre.readUInt16LE(8) : (readU32(fd, 8) as number);
    const start = major === 1 ? 10 : 12;
    const header = Buffer.alloc(headerLen);
    readSync(fd, header, 0, headerLen, start);
    const text = header.toString('latin1');
    if (!/'descr':\s*'<f4'/.test(text)) throw new Error(`${file}: only little-endian float32 ('<f4') is supported`);
    if (/'fortran_order':\s*True/.test(text)) throw new Error(`${file}: Fortran order is not supported`);
    const m = /'shape':\s*\(([^)]*)\)/.exec(text);
    if (!m) throw new Error(`${file}: no shape in the .npy header`);
    const shape = m[1]
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map(Number);
    const count = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(count);
    const got = readSync(fd, new Uint8Array(data.buffer), 0, count * 4, start + headerLen);
    if (got !== count * 4) throw new Error(`${file} is truncated: ${got} of ${count * 4} data bytes`);
    return { shape, data };
  } finally {
    closeSync(fd);
  }
}

function readU32(fd: number, pos: number): number {
  const b = Buffer.alloc(4);
  readSync(fd, b, 0, 4, pos);
  return b.readUInt32LE(0);
}
