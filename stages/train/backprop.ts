// The forward and backward passes of the MLP, written out by hand.
//
// Only the matrix products run on the tfjs backend (XNNPACK on wasm, TensorFlow on tfjs-node); bias, batch
// norm, activation, dropout and the loss are plain loops over Float32Arrays. Measured on wasm, tfjs autodiff
// over the same graph costs ~400 small kernel calls and a tape per batch, and ran at about half this speed;
// the loops are also where torch's exact semantics are easiest to keep:
//  - BatchNorm1d: normalises with the biased batch variance, but updates running_var with the unbiased one
//    (tfjs-layers uses the biased one for both), momentum 0.1 (tfjs: 0.9 for the kept part), eps 1e-5.
//  - Dropout: inverted (kept values scaled by 1/(1-p)), masks drawn from a seeded stream.
//  - cross-entropy: mean over the batch of logsumexp(logits) - logit[label].
//
//   per block, train mode:  a ─matMul W─► z +b ─BN─► pre ─act─► post ─×mask─► next a
//   backward:               da ◄─matMul Wᵀ── dz ◄─BN'── dpre ◄─act'── dpost ◄─×mask── g

import type * as tfjs from '@tensorflow/tfjs';
import {
  addBias,
  columnMoments,
  columnSums,
  dropoutInto,
  gluGradInto,
  gluInto,
  gradInto,
  mapInto,
  mulInPlace,
  normalize,
  normGradInput,
  normGradSums,
  preluGradInto,
  preluInto,
} from './kernels.ts';
import type { Block, Mlp } from './model.ts';
import type { Rng } from './random.ts';

type TF = typeof tfjs;

export const BN_MOMENTUM = 0.1; // torch convention: running = (1 - m) * running + m * batch
export const BN_EPS = 1e-5;

interface BlockCache {
  input: tfjs.Tensor2D; // the block's input, kept on the backend for dW = inputᵀ · dz
  xhat: Float32Array | null; // normalised z (BN only)
  invStd: Float32Array | null; // 1 / sqrt(var + eps) per unit (BN only)
  pre: Float32Array; // activation input
  post: Float32Array; // activation output, before dropout
  mask: Float32Array | null; // 0 or 1/(1-p)
}

export interface BatchResult {
  loss: number; // mean cross-entropy over the batch
  correct: number; // rows whose arg-max logit is the label
}

export class Passes {
  private weights: (tfjs.Tensor2D | null)[];

  constructor(
    private readonly tf: TF,
    readonly model: Mlp,
  ) {
    this.weights = new Array(model.blocks.length + 1).fill(null);
  }

  /** Call after the parameters changed: the cached weight tensors are stale. */
  invalidate(): void {
    for (const w of this.weights) w?.dispose();
    this.weights.fill(null);
  }

  dispose(): void {
    this.invalidate();
  }

  private weight(l: number): tfjs.Tensor2D {
    const w = this.weights[l];
    if (w) return w;
    const p = l < this.model.blocks.length ? this.model.blocks[l].weight : this.model.head.weight;
    const t = this.tf.keep(this.tf.tensor2d(p.value, [p.shape[0], p.shape[1]]));
    this.weights[l] = t;
    return t;
  }

  private uploadWeights(): void {
    for (let l = 0; l < this.weights.length; l++) this.weight(l);
  }

  private product(a: tfjs.Tensor2D, l: number, transposeA = false, transposeB = false): Float32Array {
    return this.tf.matMul(a, this.weight(l), transposeA, transposeB).dataSync() as Float32Array;
  }

  /**
   * One training batch: forward in train mode, loss, backward. Writes every `param.grad` and moves the BN
   * running statistics; the caller checks the loss and applies the optimizer.
   */
  trainBatch(x: Float32Array, labels: Int32Array, rand: Rng): BatchResult {
    const { tf, model } = this;
    const rows = labels.length;
    if (model.options.batchnorm && rows < 2) throw new Error('a BatchNorm training batch needs at least 2 rows');
    this.uploadWeights();
    let result: BatchResult = { loss: Number.NaN, correct: 0 };
    tf.tidy(() => {
      const caches: BlockCache[] = [];
      let a = tf.tensor2d(x, [rows, model.options.inputDim]);
      model.blocks.forEach((block, l) => {
        const z = this.product(a, l);
        const c = blockForward(block, model, z, rows, true, rand);
        caches.push({ ...c, input: a });
        a = tf.tensor2d(c.out, [rows, block.outDim]);
      });
      const L = model.blocks.length;
      const logits = this.product(a, L);
      addBias(logits, model.head.bias.value);
      result = crossEntropy(logits, labels, model.options.classes, true);
      const dlogits = tf.tensor2d(logits, [rows, model.options.classes]); // now holds d loss / d logits
      model.head.weight.grad.set(tf.matMul(a, dlogits, true, false).dataSync());
      columnSums(logits, model.head.bias.grad);
      let g = L > 0 ? (tf.matMul(dlogits, this.weight(L), false, true).dataSync() as Float32Array) : null;
      for (let l = L - 1; l >= 0 && g; l--) {
        const block = model.blocks[l];
        const dz = blockBackward(block, model, caches[l], g);
        const dzT = tf.tensor2d(dz, [rows, block.units]);
        block.weight.grad.set(tf.matMul(caches[l].input, dzT, true, false).dataSync());
        g = l > 0 ? (tf.matMul(dzT, this.weight(l), false, true).dataSync() as Float32Array) : null;
      }
    });
    return result;
  }

  /** Eval-mode logits (BN running statistics, no dropout), `batchSize` rows at a time. */
  logits(x: Float32Array, rows: number, batchSize = 1024): Float32Array {
    const { tf, model } = this;
    const d = model.options.inputDim;
    const C = model.options.classes;
    const out = new Float32Array(rows * C);
    this.uploadWeights();
    for (let start = 0; start < rows; start += batchSize) {
      const n = Math.min(batchSize, rows - start);
      tf.tidy(() => {
        let a = tf.tensor2d(x.subarray(start * d, (start + n) * d), [n, d]);
        model.blocks.forEach((block, l) => {
          const c = blockForward(block, model, this.product(a, l), n, false, null);
          a = tf.tensor2d(c.out, [n, block.outDim]);
        });
        const logits = this.product(a, model.blocks.length);
        addBias(logits, model.head.bias.value);
        out.set(logits, start * C);
      });
    }
    return out;
  }

  /** Eval-mode mean loss and correct count over a whole set. */
  evaluate(x: Float32Array, labels: Int32Array, batchSize = 1024): BatchResult {
    const logits = this.logits(x, labels.length, batchSize);
    return crossEntropy(logits, labels, this.model.options.classes, false);
  }
}

/** Mean loss and correct count; with `withGrad`, `logits` is overwritten by d(mean loss)/d(logits). */
export function crossEntropy(logits: Float32Array, labels: Int32Array, C: number, withGrad: boolean): BatchResult {
  const rows = labels.length;
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < rows; i++) {
    const o = i * C;
    let max = logits[o];
    let arg = 0;
    for (let j = 1; j < C; j++) {
      if (logits[o + j] > max) {
        max = logits[o + j];
        arg = j;
      }
    }
    let sum = 0;
    for (let j = 0; j < C; j++) sum += Math.exp(logits[o + j] - max);
    const y = labels[i];
    loss += max + Math.log(sum) - logits[o + y];
    if (arg === y) correct++;
    if (withGrad) {
      for (let j = 0; j < C; j++) logits[o + j] = (Math.exp(logits[o + j] - max) / sum - (j === y ? 1 : 0)) / rows;
    }
  }
  return { loss: loss / rows, correct };
}

function blockForward(block: Block, model: Mlp, z: Float32Array, rows: number, training: boolean, rand: Rng | null) {
  const units = block.units;
  addBias(z, block.bias.value);
  let pre = z;
  let xhat: Float32Array | null = null;
  let invStd: Float32Array | null = null;
  if (block.gamma && block.beta && block.runningMean && block.runningVar) {
    const mean = new Float64Array(units);
    const variance = new Float64Array(units);
    if (training) {
      columnMoments(z, units, mean, variance);
      const rm = block.runningMean;
      const rv = block.runningVar;
      for (let j = 0; j < units; j++) {
        rm[j] = (1 - BN_MOMENTUM) * rm[j] + BN_MOMENTUM * mean[j];
        rv[j] = (1 - BN_MOMENTUM) * rv[j] + (BN_MOMENTUM * variance[j] * rows) / (rows - 1); // unbiased, as torch
      }
    } else {
      mean.set(block.runningMean);
      variance.set(block.runningVar);
    }
    invStd = new Float32Array(units);
    for (let j = 0; j < units; j++) invStd[j] = 1 / Math.sqrt(variance[j] + BN_EPS);
    pre = new Float32Array(z.length);
    normalize(z, mean, invStd, block.gamma.value, block.beta.value, pre);
    xhat = z;
  }
  const act = model.activation;
  const post = new Float32Array(rows * block.outDim);
  if (act.kind === 'elementwise') mapInto(act.f, pre, post);
  else if (act.kind === 'prelu') preluInto(pre, block.alpha?.value[0] ?? act.init, post);
  else gluInto(pre, block.outDim, post);
  let mask: Float32Array | null = null;
  let out = post;
  const p = model.options.dropout;
  if (training && p > 0 && rand) {
    mask = new Float32Array(post.length);
    out = new Float32Array(post.length);
    dropoutInto(post, p, rand, mask, out);
  }
  return { xhat, invStd, pre, post, mask, out };
}

/** From g = d loss / d(block output) to d loss / dz (z = input · W + b); fills the block's small grads. */
function blockBackward(block: Block, model: Mlp, c: BlockCache, g: Float32Array): Float32Array {
  if (c.mask) mulInPlace(g, c.mask);
  const act = model.activation;
  const dpre = new Float32Array(c.pre.length);
  if (act.kind === 'elementwise') gradInto(act.df, g, c.pre, c.post, dpre);
  else if (act.kind === 'glu') gluGradInto(g, c.pre, block.outDim, dpre);
  else if (block.alpha) block.alpha.grad[0] = preluGradInto(g, c.pre, block.alpha.value[0], dpre);
  let dz = dpre;
  if (block.gamma && block.beta && c.xhat && c.invStd) {
    const units = block.units;
    const rows = dpre.length / units;
    const dgamma = new Float64Array(units);
    const dbeta = new Float64Array(units);
    normGradSums(dpre, c.xhat, dbeta, dgamma);
    block.gamma.grad.set(dgamma);
    block.beta.grad.set(dbeta);
    const scale = new Float64Array(units);
    for (let j = 0; j < units; j++) scale[j] = (block.gamma.value[j] * c.invStd[j]) / rows;
    dz = new Float32Array(dpre.length);
    normGradInput(dpre, c.xhat, scale, dbeta, dgamma, dz);
  }
  columnSums(dz, block.bias.grad);
  return dz;
}
