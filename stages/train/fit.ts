// The training loop of the seed study (train_with_early_stopping.py), in tfjs:
//
//   for each epoch:  shuffle (seeded) → mini-batches in train mode → AdamW step per batch
//                    → validation loss in eval mode → keep the weights if it is the best so far
//                    → stop after `patience` epochs without a new best
//   at the end:      the best epoch's weights are put back (tfjs has no restoreBestWeights)
//
// Expected failures are typed: a NaN/Inf loss throws NonFiniteLossError (after restoring the last good
// weights, so the caller can still save them), an aborted signal throws its AbortError between batches.
// Same seed, same data, same backend ⇒ the same weights, bit for bit.

import type * as tfjs from '@tensorflow/tfjs';
import { AdamW } from './adamw.ts';
import { Passes } from './backprop.ts';
import { type Mlp, restore, type Snapshot, snapshot } from './model.ts';
import { makeRng, STREAM, shuffle } from './random.ts';

export interface Dataset {
  x: Float32Array; // rows × inputDim, row-major
  y: Int32Array; // class index per row, 0 … classes-1
}

/** One line of history; snake_case because it is written as-is to metrics files. */
export interface EpochRecord {
  epoch: number; // 1-based
  train_loss: number; // mean over the epoch's batches (train mode: dropout on, batch statistics)
  train_acc: number;
  val_loss: number; // eval mode
  val_acc: number;
  lr: number;
  seconds: number; // wall time of the epoch, validation included
}

export interface EpochProgress {
  bestEpoch: number; // 0 until an epoch has finished
  patienceLeft: number | null; // epochs left without improvement before stopping; null when patience is off
}

export interface FitOptions {
  tf: typeof tfjs; // from selectBackend
  model: Mlp; // trained in place
  train: Dataset;
  val: Dataset;
  batchSize: number;
  maxEpochs: number;
  patience: number | null; // 0 or null: no early stopping (the best epoch is still restored)
  lr: number;
  weightDecay: number;
  seed: number; // shuffling and dropout; the initial weights come from the model's own seed
  betas?: [number, number];
  eps?: number;
  signal?: AbortSignal;
  onEpoch?: (record: EpochRecord, progress: EpochProgress) => void | Promise<void>;
}

export interface FitResult {
  history: EpochRecord[];
  bestEpoch: number;
  stoppedEpoch: number; // the last epoch that ran
  stoppedEarly: boolean;
  samplesPerSecond: number; // training batches only (forward, backward, optimizer), validation excluded
}

/** The loss became NaN or ±Inf: training diverged. The model already holds the last good weights. */
export class NonFiniteLossError extends Error {
  readonly reason = 'non-finite-loss';
  constructor(
    readonly epoch: number,
    readonly phase: 'train' | 'validation',
    readonly loss: number,
    readonly bestEpoch: number,
  ) {
    super(
      `${phase} loss became ${loss} in epoch ${epoch}: training diverged (try a lower lr, or check the ` +
        `embeddings for huge or NaN values). The model holds ${bestEpoch > 0 ? `epoch ${bestEpoch}'s` : 'its initial'} weights.`,
    );
    this.name = 'NonFiniteLossError';
  }
}

function checkData(what: string, d: Dataset, inputDim: number, classes: number): number {
  const rows = d.y.length;
  if (rows === 0) throw new Error(`${what} set is empty`);
  if (d.x.length !== rows * inputDim) {
    throw new Error(`${what} set: ${d.x.length} values for ${rows} rows of width ${inputDim}`);
  }
  for (let i = 0; i < rows; i++) {
    const c = d.y[i];
    if (!(c >= 0 && c < classes)) throw new Error(`${what} set: row ${i} has label ${c}, expected 0…${classes - 1}`);
  }
  return rows;
}

function checkCount(what: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new Error(`${what} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  }
  return v;
}

const YIELD_EVERY_MS = 25; // let the event loop see an abort at least this often

export async function fit(o: FitOptions): Promise<FitResult> {
  const { model, tf } = o;
  const d = model.options.inputDim;
  const n = checkData('training', o.train, d, model.options.classes);
  checkData('validation', o.val, d, model.options.classes);
  const batchSize = checkCount('batch size', o.batchSize, 1);
  const maxEpochs = checkCount('max epochs', o.maxEpochs, 1);
  const patience = o.patience ? checkCount('patience', o.patience, 0) : null;
  const optimizer = new AdamW(model.params, {
    lr: o.lr,
    weightDecay: o.weightDecay,
    beta1: o.betas?.[0],
    beta2: o.betas?.[1],
    eps: o.eps,
  });
  const passes = new Passes(tf, model);
  const shuffleRand = makeRng(o.seed, STREAM.shuffle);
  const dropoutRand = makeRng(o.seed, STREAM.dropout);
  const order = new Int32Array(n).map((_, i) => i);
  const xb = new Float32Array(batchSize * d);
  const yb = new Int32Array(batchSize);

  let best: { epoch: number; loss: number; state: Snapshot } = { epoch: 0, loss: Infinity, state: snapshot(model) };
  const history: EpochRecord[] = [];
  let sinceBest = 0;
  let trainMs = 0;
  let trainSamples = 0;
  let lastYield = performance.now();
  const giveBack = () => {
    restore(model, best.state);
    passes.dispose();
  };

  try {
    for (let epoch = 1; epoch <= maxEpochs; epoch++) {
      const t0 = performance.now();
      shuffle(order, shuffleRand);
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      for (let start = 0; start < n; start += batchSize) {
        if (performance.now() - lastYield > YIELD_EVERY_MS) {
          await new Promise((r) => setImmediate(r));
          lastYield = performance.now();
        }
        o.signal?.throwIfAborted();
        const m = Math.min(batchSize, n - start);
        // torch's BatchNorm1d refuses a training batch of one row; the seed's loader would have crashed
        if (m === 1 && model.options.batchnorm && start > 0) break;
        const tb = performance.now();
        for (let i = 0; i < m; i++) {
          const r = order[start + i];
          xb.set(o.train.x.subarray(r * d, (r + 1) * d), i * d);
          yb[i] = o.train.y[r];
        }
        const res = passes.trainBatch(xb.subarray(0, m * d), yb.subarray(0, m), dropoutRand);
        if (!Number.isFinite(res.loss)) throw new NonFiniteLossError(epoch, 'train', res.loss, best.epoch);
        optimizer.step();
        passes.invalidate();
        trainMs += performance.now() - tb;
        trainSamples += m;
        lossSum += res.loss * m;
        correct += res.correct;
        seen += m;
      }
      const val = passes.evaluate(o.val.x, o.val.y);
      if (!Number.isFinite(val.loss)) throw new NonFiniteLossError(epoch, 'validation', val.loss, best.epoch);
      const record: EpochRecord = {
        epoch,
        train_loss: lossSum / seen,
        train_acc: correct / seen,
        val_loss: val.loss,
        val_acc: val.correct / o.val.y.length,
        lr: optimizer.lr,
        seconds: (performance.now() - t0) / 1000,
      };
      history.push(record);
      if (val.loss < best.loss) {
        best = { epoch, loss: val.loss, state: snapshot(model) };
        sinceBest = 0;
      } else {
        sinceBest++;
      }
      await o.onEpoch?.(record, { bestEpoch: best.epoch, patienceLeft: patience ? patience - sinceBest : null });
      if (patience && sinceBest >= patience) break;
    }
  } finally {
    giveBack();
  }
  const stoppedEpoch = history.length;
  return {
    history,
    bestEpoch: best.epoch,
    stoppedEpoch,
    stoppedEarly: stoppedEpoch < maxEpochs,
    samplesPerSecond: trainMs > 0 ? trainSamples / (trainMs / 1000) : 0,
  };
}
