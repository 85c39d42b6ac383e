// Seeded randomness for training: weight init, per-epoch shuffling and dropout masks. Math.random is never
// used, so one seed reproduces a run bit for bit on one backend.
//
// mulberry32: a 32-bit state, fast, and good enough for shuffles and masks (not for cryptography).
// Independent streams come from hashing (seed, stream) with splitmix32 so that, for example, changing the
// number of epochs does not change the initial weights.

export type Rng = () => number; // uniform in [0, 1)

export const STREAM = { init: 1, shuffle: 2, dropout: 3 } as const;

function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

export function makeRng(seed: number, stream = 0): Rng {
  if (!Number.isInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
  let state = splitmix32(splitmix32(seed | 0) ^ Math.imul(stream + 1, 0x27d4eb2d));
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher-Yates, in place. */
export function shuffle(order: Int32Array, rand: Rng): Int32Array {
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}
