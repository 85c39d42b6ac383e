// The one seeded generator every stage uses: mulberry32 (32-bit state, uniform in [0, 1)). Written here on
// purpose: generated faces, splits, model weights and training runs must be byte-for-byte the same on every
// machine and for every future version, which a dependency's generator does not promise.

export type Rng = () => number;

export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher-Yates, in place. */
export function shuffle<T extends { length: number; [i: number]: unknown }>(xs: T, rand: Rng): T {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = xs[i];
    xs[i] = xs[j];
    xs[j] = t;
  }
  return xs;
}
