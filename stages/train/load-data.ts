// What train and evaluate read: the embedding matrix, its row index, and the split, turned into
// datasets of (rows, class indices). Class indices follow the sorted class names, the same everywhere.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { readNpy } from '../embed/npy.ts';
import { readIds, readSplitRows } from '../split/ids.ts';
import type { PART_NAMES } from '../split/stratify.ts';
import type { Dataset } from './fit.ts';

export interface SplitData {
  dim: number;
  classes: string[];
  parts: Record<(typeof PART_NAMES)[number], Dataset & { rows: number[] }>;
}

export function loadSplitData(embeddingsDir: string, splitDir: string): SplitData {
  const npyFile = path.join(embeddingsDir, 'embeddings.npy');
  const idsFile = path.join(embeddingsDir, 'ids.csv');
  const m = readNpy(npyFile);
  const ids = readIds(readFileSync(idsFile, 'utf8'), idsFile);
  if (m.shape.length !== 2) throw new Error(`${npyFile} has shape [${m.shape}], expected [rows, dim]`);
  const [n, dim] = m.shape;
  if (ids.length !== n) {
    throw new Error(
      `${npyFile} has ${n} rows but ${idsFile} lists ${ids.length} images: they come from different runs; rerun embed`,
    );
  }
  const classes = [...new Set(ids.map((r) => r.label))].sort();
  if (classes.length < 2) throw new Error(`only one class (${classes[0]}) in ${idsFile}: nothing to classify`);
  const classOf = new Map(classes.map((c, i) => [c, i]));
  const rowsBySplit = readSplitRows(splitDir, ids);
  const take = (rows: number[]) => {
    const x = new Float32Array(rows.length * dim);
    const y = new Int32Array(rows.length);
    rows.forEach((r, i) => {
      x.set(m.data.subarray(r * dim, (r + 1) * dim), i * dim);
      y[i] = classOf.get(ids[r].label) as number;
    });
    return { x, y, rows };
  };
  return {
    dim,
    classes,
    parts: { train: take(rowsBySplit.train), val: take(rowsBySplit.val), test: take(rowsBySplit.test) },
  };
}
