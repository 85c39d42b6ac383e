// Timing helpers shared by the benchmarks.

/** Wall seconds `fn` takes. */
export async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

/** The median of `n` timings of `fn`. */
export async function median(fn: () => Promise<unknown>, n: number): Promise<number> {
  const ts: number[] = [];
  for (let i = 0; i < n; i++) ts.push(await time(fn));
  ts.sort((a, b) => a - b);
  return ts[Math.floor(ts.length / 2)];
}
