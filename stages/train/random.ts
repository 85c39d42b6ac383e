// Seeded randomness for training: weight init, per-epoch shuffling and dropout masks. Math.random is never
// used, so one seed reproduces a run bit for bit on one backend.
//
// mulberry32: a 32-bit state, fast, and good enough for shuffles and masks (not for cryptography).
// Independent streams come from hashing (seed, stream) with splitmix32 so that, for example, changing the
// number of epochs does not change the initial weights.

import { mulberry32, type Rng } from '../random.ts';

export { type Rng, shuffle } from '../random.ts';

export const STREAM = { init: 1, shuffle: 2, dropout: 3 } as const;

function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

export function makeRng(seed: number, stream = 0): Rng {
  if (!Number.isInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
  return mulberry32(splitmix32(splitmix32(seed | 0) ^ Math.imul(stream + 1, 0x27d4eb2d)));
}
