// The training loop on the wasm backend, on small generated data: early stopping and best-weight restore,
// determinism, learning something real, NaN handling, abort, and no leaked tensors.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { selectBackend } from '../stages/train/backend.ts';
import { Passes } from '../stages/train/backprop.ts';
import { type EpochRecord, fit, NonFiniteLossError } from '../stages/train/fit.ts';
import { buildMlp, type MlpOptions, snapshot } from '../stages/train/model.ts';
import { clusters, rowsOf, type Split } from './train-data.ts';

const { tf } = await selectBackend('wasm');

const base = (over: Partial<MlpOptions> = {}): MlpOptions => ({
  inputDim: 16,
  classes: 2,
  hidden: [32, 16],
  activation: 'relu',
  batchnorm: true,
  dropout: 0.1,
  seed: 1,
  ...over,
});

const fitDefaults = { batchSize: 16, lr: 1e-3, weightDecay: 1e-3, seed: 5 };

/** Labels that carry no signal: a big model memorises train and val loss climbs. */
function noise(rows: number, dim: number, seed: number): Split {
  const s = clusters(rows, dim, 2, 0, seed);
  const y = s.y.map((_, i) => ((i * 7919) % 13) % 2);
  return { x: s.x, y };
}

describe('early stopping', () => {
  test('stops at best + patience and puts the best epoch weights back', async () => {
    const model = buildMlp(base({ hidden: [128, 128], dropout: 0 }));
    const train = noise(64, 16, 1);
    const val = noise(64, 16, 2);
    const perEpoch: Float32Array[][] = [];
    const progress: { bestEpoch: number; patienceLeft: number | null }[] = [];
    const res = await fit({
      tf,
      model,
      train,
      val,
      ...fitDefaults,
      lr: 1e-2,
      maxEpochs: 60,
      patience: 4,
      onEpoch: (_h, p) => {
        perEpoch.push(snapshot(model));
        progress.push(p);
      },
    });
    assert.ok(res.stoppedEarly, `stopped early (ran ${res.stoppedEpoch} epochs)`);
    assert.equal(res.stoppedEpoch, res.bestEpoch + 4);
    assert.equal(res.history.length, res.stoppedEpoch);
    const losses = res.history.map((h) => h.val_loss);
    assert.equal(Math.min(...losses), losses[res.bestEpoch - 1], 'best = lowest validation loss');
    assert.deepEqual(progress.at(-1), { bestEpoch: res.bestEpoch, patienceLeft: 0 });
    assert.deepEqual(snapshot(model), perEpoch[res.bestEpoch - 1], 'weights (and BN buffers) of the best epoch');
    const passes = new Passes(tf, model);
    assert.equal(passes.evaluate(val.x, val.y).loss, losses[res.bestEpoch - 1]);
    passes.dispose();
  });

  test('patience 0 or null runs every epoch and still restores the best', async () => {
    for (const patience of [0, null]) {
      const model = buildMlp(base());
      const res = await fit({
        tf,
        model,
        train: noise(48, 16, 3),
        val: noise(32, 16, 4),
        ...fitDefaults,
        maxEpochs: 4,
        patience,
      });
      assert.equal(res.stoppedEpoch, 4);
      assert.equal(res.stoppedEarly, false);
      assert.ok(res.bestEpoch >= 1 && res.bestEpoch <= 4);
    }
  });
});

describe('determinism', () => {
  const run = async (fitSeed: number) => {
    const model = buildMlp(base());
    const data = clusters(160, 16, 2, 0.3, 9);
    const res = await fit({
      tf,
      model,
      train: rowsOf(data, 0, 128),
      val: rowsOf(data, 128, 160),
      ...fitDefaults,
      seed: fitSeed,
      maxEpochs: 3,
      patience: null,
    });
    return { weights: snapshot(model), losses: res.history.map((h) => [h.train_loss, h.val_loss]) };
  };

  test('same seeds, same backend: bit-identical weights and history', async () => {
    const a = await run(5);
    const b = await run(5);
    assert.deepEqual(a.weights, b.weights);
    assert.deepEqual(a.losses, b.losses);
  });

  test('another shuffle/dropout seed gives other weights', async () => {
    const a = await run(5);
    const c = await run(6);
    assert.notDeepEqual(a.weights, c.weights);
  });
});

test('end to end: separable Gaussian clusters are learned well above chance', async () => {
  const data = clusters(900, 32, 3, 0.4, 11);
  const model = buildMlp(base({ inputDim: 32, classes: 3, hidden: [64, 32], dropout: 0.15 }));
  const history: EpochRecord[] = [];
  const res = await fit({
    tf,
    model,
    train: rowsOf(data, 0, 720),
    val: rowsOf(data, 720, 810),
    batchSize: 32,
    lr: 1e-3,
    weightDecay: 1e-3,
    seed: 42,
    maxEpochs: 15,
    patience: 5,
    onEpoch: (h) => {
      history.push(h);
    },
  });
  const test = rowsOf(data, 810, 900);
  const passes = new Passes(tf, model);
  const acc = passes.evaluate(test.x, test.y).correct / test.y.length;
  passes.dispose();
  assert.ok(acc > 0.8, `test accuracy ${acc} (chance 0.33)`);
  assert.deepEqual(history, res.history);
  for (const h of res.history) {
    assert.deepEqual(Object.keys(h), ['epoch', 'train_loss', 'train_acc', 'val_loss', 'val_acc', 'lr', 'seconds']);
    assert.equal(h.lr, 1e-3);
  }
  assert.ok(res.samplesPerSecond > 0);
});

describe('divergence', () => {
  test('a NaN loss stops training, names the epoch, and leaves the last good weights', async () => {
    const data = clusters(96, 16, 2, 0.3, 12);
    const train = rowsOf(data, 0, 64);
    const model = buildMlp(base());
    let best: Float32Array[] = [];
    const err = await fit({
      tf,
      model,
      train,
      val: rowsOf(data, 64, 96),
      ...fitDefaults,
      maxEpochs: 10,
      patience: null,
      onEpoch: (_h, p) => {
        if (p.bestEpoch === _h.epoch) best = snapshot(model);
        if (_h.epoch === 2) train.x[5] = Number.NaN; // poison epoch 3
      },
    }).catch((e) => e);
    assert.ok(err instanceof NonFiniteLossError, String(err));
    assert.equal(err.epoch, 3);
    assert.equal(err.phase, 'train');
    assert.match(err.message, /train loss became NaN in epoch 3/);
    assert.match(err.message, /holds epoch [12]'s weights/);
    assert.deepEqual(snapshot(model), best);
    assert.ok(snapshot(model).every((a) => a.every(Number.isFinite)));
  });

  test('huge inputs overflow in epoch 1: the initial weights are kept', async () => {
    const model = buildMlp(base());
    const initial = snapshot(model);
    const train = { x: new Float32Array(32 * 16).fill(3e38), y: new Int32Array(32).map((_, i) => i % 2) };
    const err = await fit({ tf, model, train, val: train, ...fitDefaults, maxEpochs: 3, patience: 2 }).catch((e) => e);
    assert.ok(err instanceof NonFiniteLossError, String(err));
    assert.equal(err.epoch, 1);
    assert.equal(err.reason, 'non-finite-loss');
    assert.match(err.message, /holds its initial weights/);
    assert.deepEqual(snapshot(model), initial);
  });
});

test('abort: rejects with an AbortError between batches, promptly, without leaking tensors', async () => {
  const before = tf.memory().numTensors;
  const data = clusters(2000, 16, 2, 0.3, 13);
  const model = buildMlp(base());
  const ctl = new AbortController();
  let abortedAt = 0;
  setTimeout(() => {
    abortedAt = performance.now();
    ctl.abort();
  }, 150);
  const err = await fit({
    tf,
    model,
    train: data,
    val: rowsOf(data, 0, 100),
    ...fitDefaults,
    maxEpochs: 10_000,
    patience: null,
    signal: ctl.signal,
  }).catch((e) => e);
  const delay = performance.now() - abortedAt;
  assert.equal((err as Error).name, 'AbortError');
  assert.ok(delay < 500, `stopped ${delay.toFixed(0)} ms after the abort`);
  assert.equal(tf.memory().numTensors, before);
});

test('bad inputs are refused with what is wrong', async () => {
  const model = buildMlp(base());
  const ok = clusters(32, 16, 2, 0.3, 14);
  const go = (over: object) =>
    fit({ tf, model, train: ok, val: ok, ...fitDefaults, maxEpochs: 1, patience: null, ...over });
  await assert.rejects(
    go({ train: { x: new Float32Array(10), y: new Int32Array(2) } }),
    /training set: 10 values for 2 rows of width 16/,
  );
  await assert.rejects(
    go({ val: { x: ok.x, y: ok.y.map(() => 2) } }),
    /validation set: row 0 has label 2, expected 0…1/,
  );
  await assert.rejects(go({ batchSize: 0 }), /batch size must be an integer >= 1, got 0/);
  await assert.rejects(go({ val: { x: new Float32Array(0), y: new Int32Array(0) } }), /validation set is empty/);
});
