// The elementwise loops of the hand-written passes (backprop.ts), one small function each. V8 compiles a
// short monomorphic loop in its own function about twice as fast as the same loop inside a big function,
// and these loops are a third of a training step. Matrices are row-major: element (r, j) of a rows × units
// matrix is m[r * units + j].

import type { Rng } from './random.ts';

export function addBias(z: Float32Array, bias: Float32Array): void {
  const n = bias.length;
  for (let i = 0; i < z.length; i += n) for (let j = 0; j < n; j++) z[i + j] += bias[j];
}

/** Column sums into `out`, accumulated in float64. */
export function columnSums(m: Float32Array, out: Float32Array): void {
  const n = out.length;
  const acc = new Float64Array(n);
  for (let i = 0; i < m.length; i += n) for (let j = 0; j < n; j++) acc[j] += m[i + j];
  out.set(acc);
}

/** Per-column mean and biased variance (two passes, as torch's batch norm). */
export function columnMoments(z: Float32Array, units: number, mean: Float64Array, variance: Float64Array): void {
  const rows = z.length / units;
  for (let i = 0; i < z.length; i += units) for (let j = 0; j < units; j++) mean[j] += z[i + j];
  for (let j = 0; j < units; j++) mean[j] /= rows;
  for (let i = 0; i < z.length; i += units) {
    for (let j = 0; j < units; j++) {
      const d = z[i + j] - mean[j];
      variance[j] += d * d;
    }
  }
  for (let j = 0; j < units; j++) variance[j] /= rows;
}

/** xhat = (z - mean) * invStd, written over z; pre = gamma * xhat + beta. */
export function normalize(
  z: Float32Array,
  mean: Float64Array,
  invStd: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  pre: Float32Array,
): void {
  const units = mean.length;
  for (let i = 0; i < z.length; i += units) {
    for (let j = 0; j < units; j++) {
      const xh = (z[i + j] - mean[j]) * invStd[j];
      z[i + j] = xh;
      pre[i + j] = gamma[j] * xh + beta[j];
    }
  }
}

export function mapInto(f: (x: number) => number, x: Float32Array, out: Float32Array): void {
  for (let i = 0; i < x.length; i++) out[i] = f(x[i]);
}

/** dpre = g * f'(pre, post). */
export function gradInto(
  df: (x: number, y: number) => number,
  g: Float32Array,
  pre: Float32Array,
  post: Float32Array,
  dpre: Float32Array,
): void {
  for (let i = 0; i < g.length; i++) dpre[i] = g[i] * df(pre[i], post[i]);
}

/** Inverted dropout: mask is 0 (probability p) or 1/(1-p); out = x * mask. */
export function dropoutInto(x: Float32Array, p: number, rand: Rng, mask: Float32Array, out: Float32Array): void {
  const keep = 1 / (1 - p);
  for (let i = 0; i < x.length; i++) {
    const m = rand() < p ? 0 : keep;
    mask[i] = m;
    out[i] = x[i] * m;
  }
}

export function mulInPlace(x: Float32Array, by: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] *= by[i];
}

/** dbeta = Σ_rows dpre, dgamma = Σ_rows dpre * xhat (float64 accumulators, zeroed by the caller). */
export function normGradSums(dpre: Float32Array, xhat: Float32Array, dbeta: Float64Array, dgamma: Float64Array): void {
  const units = dbeta.length;
  for (let i = 0; i < dpre.length; i += units) {
    for (let j = 0; j < units; j++) {
      dbeta[j] += dpre[i + j];
      dgamma[j] += dpre[i + j] * xhat[i + j];
    }
  }
}

/** Batch norm's input gradient: dz = scale · (N·dpre − dbeta − xhat·dgamma), scale = γ·invStd/N per unit. */
export function normGradInput(
  dpre: Float32Array,
  xhat: Float32Array,
  scale: Float64Array,
  dbeta: Float64Array,
  dgamma: Float64Array,
  dz: Float32Array,
): void {
  const units = scale.length;
  const rows = dpre.length / units;
  for (let i = 0; i < dpre.length; i += units) {
    for (let j = 0; j < units; j++) dz[i + j] = scale[j] * (rows * dpre[i + j] - dbeta[j] - xhat[i + j] * dgamma[j]);
  }
}

export function sigmoidOf(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** torch nn.GLU on rows of 2h: out = a * sigmoid(b), a = first h columns, b = the last h. */
export function gluInto(pre: Float32Array, h: number, out: Float32Array): void {
  const rows = out.length / h;
  for (let r = 0; r < rows; r++) {
    const i = r * 2 * h;
    for (let j = 0; j < h; j++) out[r * h + j] = pre[i + j] * sigmoidOf(pre[i + h + j]);
  }
}

export function gluGradInto(g: Float32Array, pre: Float32Array, h: number, dpre: Float32Array): void {
  const rows = g.length / h;
  for (let r = 0; r < rows; r++) {
    const i = r * 2 * h;
    for (let j = 0; j < h; j++) {
      const s = sigmoidOf(pre[i + h + j]);
      const gj = g[r * h + j];
      dpre[i + j] = gj * s;
      dpre[i + h + j] = gj * pre[i + j] * s * (1 - s);
    }
  }
}

export function preluInto(pre: Float32Array, a: number, out: Float32Array): void {
  for (let i = 0; i < pre.length; i++) out[i] = pre[i] > 0 ? pre[i] : a * pre[i];
}

/** Returns d loss / d a (torch: the sum of g * x where x <= 0). */
export function preluGradInto(g: Float32Array, pre: Float32Array, a: number, dpre: Float32Array): number {
  let da = 0;
  for (let i = 0; i < g.length; i++) {
    const x = pre[i];
    if (x > 0) {
      dpre[i] = g[i];
    } else {
      dpre[i] = a * g[i];
      da += x * g[i];
    }
  }
  return da;
}
