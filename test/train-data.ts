// Generated embeddings for the training tests: Gaussian clusters, one per class, seeded.

import { makeRng } from '../stages/train/random.ts';

export interface Split {
  x: Float32Array;
  y: Int32Array;
}

/** `rows` points of width `dim`: class c is N(center_c, 1) with centers `spread` apart on average. */
export function clusters(rows: number, dim: number, classes: number, spread: number, seed: number): Split {
  const r = makeRng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const centers = Array.from({ length: classes }, () => Float32Array.from({ length: dim }, () => gauss() * spread));
  const x = new Float32Array(rows * dim);
  const y = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    y[i] = i % classes;
    for (let j = 0; j < dim; j++) x[i * dim + j] = centers[y[i]][j] + gauss();
  }
  return { x, y };
}

/** Rows [from, to) of a split (copies). */
export function rowsOf(s: Split, from: number, to: number): Split {
  const dim = s.x.length / s.y.length;
  return { x: s.x.slice(from * dim, to * dim), y: s.y.slice(from, to) };
}
