// The seed study's classifier: an MLP on embeddings, as plain Float32Array parameters.
//
//   input ─► [ Linear ─► BatchNorm1d ─► activation ─► Dropout(p) ] × len(hidden) ─► Linear ─► logits
//
// Parameters live in JS memory, in torch's `model.parameters()` order and torch's initialisation, so that
// AdamW (adamw.ts) and the hand-written passes (backprop.ts) can update them without a tensor round trip per
// parameter. A weight matrix is stored [in, out] row-major (tfjs Dense's kernel layout; torch stores
// [out, in], which is the same numbers transposed). For `glu`, a block's Linear and BatchNorm have 2h units
// and the gate halves them back to h.

import { type Activation, type ActivationName, activation } from './activations.ts';
import { makeRng, STREAM } from './random.ts';

export interface MlpOptions {
  inputDim: number; // embedding width
  classes: number; // number of output logits
  hidden: number[]; // widths of the hidden blocks, e.g. [384, 256, 128, 64, 32]
  activation: string; // a name from ACTIVATIONS
  batchnorm: boolean; // BatchNorm1d after each hidden Linear
  dropout: number; // drop probability after each hidden activation; 0 = none
  seed: number; // initial weights (shuffling and dropout take their own streams of the same seed)
}

/** One trained tensor: `value` is updated in place by the optimizer, `grad` is written by the passes. */
export interface Param {
  name: string; // torch-style, e.g. "blocks.0.linear.weight"
  shape: number[];
  value: Float32Array;
  grad: Float32Array;
}

export interface Block {
  inDim: number;
  units: number; // Linear/BatchNorm width (2h for glu)
  outDim: number; // width after the activation (h)
  weight: Param; // [inDim, units]
  bias: Param; // [units]
  gamma: Param | null; // BatchNorm scale, null without batchnorm
  beta: Param | null;
  runningMean: Float32Array | null; // BatchNorm buffers (torch: running_mean, running_var)
  runningVar: Float32Array | null;
  alpha: Param | null; // prelu's slope
}

export interface Mlp {
  options: MlpOptions;
  activationName: ActivationName;
  activation: Activation;
  blocks: Block[];
  head: { weight: Param; bias: Param };
  params: Param[]; // every trained tensor, torch order
}

/** A copy of all weights and buffers: what early stopping keeps and restores. */
export type Snapshot = Float32Array[];

function checkInteger(what: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new Error(`${what} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  }
  return v;
}

export function validateOptions(o: MlpOptions): void {
  checkInteger('inputDim', o.inputDim, 1);
  checkInteger('classes', o.classes, 2);
  if (!Array.isArray(o.hidden))
    throw new Error(`hidden must be a list of layer sizes, got ${JSON.stringify(o.hidden)}`);
  o.hidden.forEach((h, i) => {
    if (typeof h !== 'number' || !Number.isInteger(h) || h < 1) {
      throw new Error(`hidden[${i}] must be a positive integer layer size, got ${JSON.stringify(h)}`);
    }
  });
  if (typeof o.dropout !== 'number' || !(o.dropout >= 0 && o.dropout < 1)) {
    throw new Error(`dropout must be in [0, 1), got ${JSON.stringify(o.dropout)}`);
  }
  checkInteger('seed', o.seed, Number.MIN_SAFE_INTEGER);
  activation(o.activation);
}

/** Builds the MLP with torch's default init: Linear weight and bias ~ U(±1/sqrt(fan_in)), BN γ=1 β=0. */
export function buildMlp(options: MlpOptions): Mlp {
  validateOptions(options);
  const act = activation(options.activation);
  const rand = makeRng(options.seed, STREAM.init);
  const params: Param[] = [];
  const param = (name: string, shape: number[], fill: (i: number) => number): Param => {
    const size = shape.reduce((a, b) => a * b, 1);
    const value = new Float32Array(size);
    for (let i = 0; i < size; i++) value[i] = fill(i);
    const p = { name, shape, value, grad: new Float32Array(size) };
    params.push(p);
    return p;
  };
  const uniform = (fanIn: number) => {
    const bound = 1 / Math.sqrt(fanIn);
    return () => (rand() * 2 - 1) * bound;
  };
  const blocks: Block[] = [];
  let inDim = options.inputDim;
  options.hidden.forEach((h, i) => {
    const units = act.kind === 'glu' ? 2 * h : h;
    const pre = `blocks.${i}`;
    const weight = param(`${pre}.linear.weight`, [inDim, units], uniform(inDim));
    const bias = param(`${pre}.linear.bias`, [units], uniform(inDim));
    const gamma = options.batchnorm ? param(`${pre}.bn.weight`, [units], () => 1) : null;
    const beta = options.batchnorm ? param(`${pre}.bn.bias`, [units], () => 0) : null;
    const alpha = act.kind === 'prelu' ? param(`${pre}.act.weight`, [1], () => act.init) : null;
    blocks.push({
      inDim,
      units,
      outDim: h,
      weight,
      bias,
      gamma,
      beta,
      runningMean: options.batchnorm ? new Float32Array(units) : null,
      runningVar: options.batchnorm ? new Float32Array(units).fill(1) : null,
      alpha,
    });
    inDim = h;
  });
  const head = {
    weight: param('head.weight', [inDim, options.classes], uniform(inDim)),
    bias: param('head.bias', [options.classes], uniform(inDim)),
  };
  return { options, activationName: options.activation as ActivationName, activation: act, blocks, head, params };
}

function stateArrays(m: Mlp): Float32Array[] {
  const out = m.params.map((p) => p.value);
  for (const b of m.blocks) if (b.runningMean && b.runningVar) out.push(b.runningMean, b.runningVar);
  return out;
}

export function snapshot(m: Mlp): Snapshot {
  return stateArrays(m).map((a) => a.slice());
}

export function restore(m: Mlp, s: Snapshot): void {
  stateArrays(m).forEach((a, i) => {
    a.set(s[i]);
  });
}

export function parameterCount(m: Mlp): number {
  return m.params.reduce((n, p) => n + p.value.length, 0);
}
