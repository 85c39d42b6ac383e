// A stratified split: each class is shuffled with a seeded generator and cut by the ratios, so every
// part has each class in the same proportion. Pure: the same ids, labels, ratios and seed give the same
// three lists on any machine.

import { mulberry32, shuffle } from '../random.ts';

export interface SplitParts {
  train: string[];
  val: string[];
  test: string[];
}

export const PART_NAMES = ['train', 'val', 'test'] as const;

export function checkRatios(ratios: unknown): [number, number, number] {
  const ok =
    Array.isArray(ratios) &&
    ratios.length === 3 &&
    ratios.every((r) => typeof r === 'number' && Number.isFinite(r) && r >= 0) &&
    Math.abs((ratios as number[]).reduce((a, b) => a + b, 0) - 1) < 1e-6 &&
    (ratios as number[])[0] > 0;
  if (!ok) {
    throw new Error(
      `split.ratios must be three non-negative numbers (train, val, test) that sum to 1, with train > 0; got ${JSON.stringify(ratios)}`,
    );
  }
  return ratios as [number, number, number];
}

/** How many of `n` go to each part: largest remainders, and at least one in every part whose ratio is > 0. */
function counts(n: number, ratios: [number, number, number]): [number, number, number] {
  const exact = ratios.map((r) => r * n);
  const c = exact.map(Math.floor) as [number, number, number];
  const order = [0, 1, 2].sort((a, b) => exact[b] - c[b] - (exact[a] - c[a]) || a - b);
  for (let left = n - (c[0] + c[1] + c[2]), k = 0; left > 0; left--, k++) c[order[k % 3]]++;
  for (const i of [1, 2, 0]) {
    if (ratios[i] > 0 && c[i] === 0) {
      const donor = [0, 1, 2].filter((j) => c[j] > 1).sort((a, b) => c[b] - c[a])[0];
      c[donor]--;
      c[i]++;
    }
  }
  return c;
}

export function stratifiedSplit(
  rows: Array<{ id: string; label: string }>,
  ratios: [number, number, number],
  seed: number,
): SplitParts {
  const byClass = new Map<string, string[]>();
  for (const r of rows) byClass.set(r.label, [...(byClass.get(r.label) ?? []), r.id]);
  const needed = ratios.filter((r) => r > 0).length;
  const small = [...byClass].filter(([, ids]) => ids.length < needed);
  if (small.length > 0) {
    throw new Error(
      `cannot stratify: ${small.map(([c, ids]) => `class '${c}' has ${ids.length} image${ids.length === 1 ? '' : 's'}`).join(', ')}; ` +
        `each class needs at least ${needed} (one per part). Add images of ${small.length === 1 ? 'that class' : 'those classes'}, ` +
        'merge or drop them (labels.*), or set a ratio to 0.',
    );
  }
  const parts: SplitParts = { train: [], val: [], test: [] };
  const rand = mulberry32(seed);
  for (const label of [...byClass.keys()].sort()) {
    const ids = shuffle([...(byClass.get(label) as string[])].sort(), rand);
    const [a, b] = counts(ids.length, ratios);
    parts.train.push(...ids.slice(0, a));
    parts.val.push(...ids.slice(a, a + b));
    parts.test.push(...ids.slice(a + b));
  }
  for (const k of PART_NAMES) parts[k].sort();
  return parts;
}
