// The model pieces: torch semantics of each activation (and its hand-written derivative), config errors,
// batch norm and dropout in train vs eval mode, the wasm matmul fix, and save → load → predict.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ACTIVATIONS, activation, activationLayer } from '../stages/train/activations.ts';
import { patchWasmMatMul, selectBackend } from '../stages/train/backend.ts';
import { Passes } from '../stages/train/backprop.ts';
import { fit } from '../stages/train/fit.ts';
import { buildMlp, type MlpOptions, parameterCount } from '../stages/train/model.ts';
import { makeRng } from '../stages/train/random.ts';
import { loadModel, predictProba, saveModel } from '../stages/train/save.ts';
import { clusters } from './train-data.ts';

const { tf, detail } = await selectBackend('wasm');
const tmp = mkdtempSync(path.join(tmpdir(), 'train-model-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const base = (over: Partial<MlpOptions> = {}): MlpOptions => ({
  inputDim: 8,
  classes: 3,
  hidden: [12, 6],
  activation: 'relu',
  batchnorm: true,
  dropout: 0.2,
  seed: 3,
  ...over,
});

const softmaxRows = (logits: Float32Array, C: number) => {
  const out = new Float32Array(logits.length);
  for (let i = 0; i < logits.length; i += C) {
    const row = logits.subarray(i, i + C);
    const m = Math.max(...row);
    const e = Array.from(row, (v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    e.forEach((v, j) => {
      out[i + j] = v / s;
    });
  }
  return out;
};

describe('activations', () => {
  test('torch values where tfjs differs or has no built-in', () => {
    const at = (name: string, x: number) => {
      const a = activation(name);
      assert.equal(a.kind, 'elementwise');
      return a.kind === 'elementwise' ? a.f(x) : Number.NaN;
    };
    const near = (v: number, e: number) => assert.ok(Math.abs(v - e) < 1e-6, `${v} vs ${e}`);
    near(at('hard_sigmoid', 1), 1 / 6 + 0.5); // tfjs hardSigmoid: 0.7
    near(at('hard_swish', 1), 2 / 3);
    near(at('leaky_relu', -1), -0.01); // tfjs leakyReLU default: -0.3
    near(at('gelu', 1), 0.8413447460685429); // exact erf form
    near(at('gelu_tanh', 1), 0.8411919906082768);
    near(at('celu', -1), Math.exp(-1) - 1);
    near(at('selu', -1), -1.1113307378125625);
    near(at('mish', 1), 0.8650983882673103);
    near(at('silu', 1), 0.7310585786300049);
    near(at('softplus', 1), 1.3132616875182228);
    near(at('softplus', 30), 30); // torch's threshold
    near(at('relu6', 7), 6);
  });

  test('unknown name: an error listing the valid ones', () => {
    assert.throws(
      () => activation('swishy'),
      (e: Error) => {
        assert.match(e.message, /unknown activation 'swishy'; valid: relu, leaky_relu, elu/);
        for (const name of ACTIVATIONS) assert.ok(e.message.includes(name), name);
        return true;
      },
    );
    assert.throws(() => buildMlp(base({ activation: 'ReLU' })), /unknown activation 'ReLU'/);
  });

  test('derivatives agree with central differences; values agree with the saved-model layer', () => {
    const xs = [-4, -2.9, -1.3, -0.4, 0.2, 0.9, 2.2, 3.1, 5];
    for (const name of ACTIVATIONS) {
      const a = activation(name);
      if (a.kind !== 'elementwise') continue;
      for (const x of xs) {
        const h = 1e-5;
        const numeric = (a.f(x + h) - a.f(x - h)) / (2 * h);
        assert.ok(Math.abs(a.df(x, a.f(x)) - numeric) < 1e-4, `${name}'(${x}): ${a.df(x, a.f(x))} vs ${numeric}`);
      }
      const layer = activationLayer(name, `${name}_check`);
      const got = tf.tidy(() =>
        (layer.apply(tf.tensor2d(xs, [1, xs.length])) as typeof tf.Tensor.prototype).dataSync(),
      );
      xs.forEach((x, i) => {
        assert.ok(Math.abs(got[i] - a.f(x)) < 1e-5, `${name}(${x}): layer ${got[i]} vs ${a.f(x)}`);
      });
    }
  });
});

describe('model options', () => {
  test('hidden sizes must be positive integers, named in the error', () => {
    assert.throws(
      () => buildMlp(base({ hidden: [384, 0, 32] })),
      /hidden\[1\] must be a positive integer layer size, got 0/,
    );
    assert.throws(
      () => buildMlp(base({ hidden: [2.5] })),
      /hidden\[0\] must be a positive integer layer size, got 2.5/,
    );
    assert.throws(() => buildMlp(base({ hidden: [64, -3] })), /hidden\[1\] .* got -3/);
    assert.throws(() => buildMlp(base({ hidden: ['64'] as unknown as number[] })), /hidden\[0\] .* got "64"/);
    assert.throws(
      () => buildMlp(base({ hidden: '64' as unknown as number[] })),
      /hidden must be a list of layer sizes/,
    );
    assert.throws(() => buildMlp(base({ dropout: 1 })), /dropout must be in \[0, 1\), got 1/);
  });

  test('torch init: Linear ~ U(±1/sqrt(fan_in)), BN γ=1 β=0, buffers 0/1; the seed decides', () => {
    const m = buildMlp(base({ inputDim: 100, hidden: [50] }));
    const w = m.blocks[0].weight.value;
    const bound = 1 / Math.sqrt(100);
    assert.ok(w.every((v) => Math.abs(v) <= bound));
    assert.ok(Math.max(...w) > 0.9 * bound && Math.min(...w) < -0.9 * bound, 'fills the range');
    assert.ok(m.blocks[0].gamma?.value.every((v) => v === 1));
    assert.ok(m.blocks[0].runningVar?.every((v) => v === 1));
    assert.deepEqual(m.params.map((p) => p.name).slice(0, 4), [
      'blocks.0.linear.weight',
      'blocks.0.linear.bias',
      'blocks.0.bn.weight',
      'blocks.0.bn.bias',
    ]);
    assert.deepEqual(buildMlp(base()).params[0].value, buildMlp(base()).params[0].value);
    assert.notDeepEqual(buildMlp(base()).params[0].value, buildMlp(base({ seed: 4 })).params[0].value);
    assert.equal(parameterCount(buildMlp(base())), 8 * 12 + 12 + 24 + 12 * 6 + 6 + 12 + 6 * 3 + 3);
  });
});

describe('train mode vs eval mode', () => {
  const x = clusters(16, 8, 2, 0.5, 21);
  const y = x.y;

  test('train mode: BN uses batch statistics and moves running stats like torch (momentum 0.1, unbiased var)', () => {
    const m = buildMlp(base({ hidden: [5], dropout: 0, classes: 2 }));
    const b = m.blocks[0];
    // z = x·W + b by hand, then its batch mean and unbiased variance per unit
    const rows = 16;
    const z = new Float64Array(rows * 5);
    for (let r = 0; r < rows; r++)
      for (let j = 0; j < 5; j++) {
        let s = b.bias.value[j];
        for (let k = 0; k < 8; k++) s += x.x[r * 8 + k] * b.weight.value[k * 5 + j];
        z[r * 5 + j] = s;
      }
    const passes = new Passes(tf, m);
    passes.trainBatch(x.x, y, makeRng(1));
    for (let j = 0; j < 5; j++) {
      let mean = 0;
      for (let r = 0; r < rows; r++) mean += z[r * 5 + j] / rows;
      let ss = 0;
      for (let r = 0; r < rows; r++) ss += (z[r * 5 + j] - mean) ** 2;
      assert.ok(Math.abs((b.runningMean?.[j] ?? 0) - 0.1 * mean) < 1e-5, 'running mean');
      assert.ok(Math.abs((b.runningVar?.[j] ?? 0) - (0.9 + (0.1 * ss) / (rows - 1))) < 1e-5, 'running var');
    }
    passes.dispose();
  });

  test('dropout is on in train mode only; eval mode is deterministic', () => {
    const m = buildMlp(base({ classes: 2, dropout: 0.5 }));
    const passes = new Passes(tf, m);
    const e1 = passes.evaluate(x.x, y).loss;
    const e2 = passes.evaluate(x.x, y).loss;
    assert.equal(e1, e2);
    const t1 = passes.trainBatch(x.x, y, makeRng(1)).loss;
    const t2 = passes.trainBatch(x.x, y, makeRng(2)).loss;
    assert.notEqual(t1, t2, 'different dropout masks');
    const t3 = passes.trainBatch(x.x, y, makeRng(1)).loss;
    assert.equal(t1, t3, 'same mask, same weights: train mode ignores the running stats it moved');
    passes.dispose();
  });

  test('without dropout, train and eval still differ by BN statistics', () => {
    const m = buildMlp(base({ classes: 2, dropout: 0 }));
    const passes = new Passes(tf, m);
    const evalLoss = passes.evaluate(x.x, y).loss;
    const trainLoss = passes.trainBatch(x.x, y, makeRng(1)).loss;
    const trainAgain = passes.trainBatch(x.x, y, makeRng(2)).loss;
    assert.equal(trainLoss, trainAgain, 'no randomness without dropout');
    assert.notEqual(trainLoss, evalLoss);
    passes.dispose();
  });
});

describe('wasm backend', () => {
  test('selected with SIMD and the matmul fix, which changes no result beyond rounding', () => {
    assert.match(detail, /^wasm \(SIMD, 1 thread, BatchMatMul transpose fix\)$/);
    const r = makeRng(2);
    const a = tf.tensor3d(
      Float32Array.from({ length: 2 * 33 * 17 }, () => r() - 0.5),
      [2, 33, 17],
    );
    const b = tf.tensor3d(
      Float32Array.from({ length: 2 * 33 * 9 }, () => r() - 0.5),
      [2, 33, 9],
    );
    const c = tf.tensor2d(
      Float32Array.from({ length: 9 * 17 }, () => r() - 0.5),
      [9, 17],
    );
    const d = tf.tensor2d(
      Float32Array.from({ length: 17 * 5 }, () => r() - 0.5),
      [17, 5],
    );
    const run = () => [
      tf.matMul(a, b, true, false).dataSync(),
      tf.matMul(b, a, true, false).dataSync(),
      tf.matMul(a.reshape([66, 17]), c, false, true).dataSync(),
      tf.matMul(d, a.reshape([66, 17]), true, true).dataSync(),
    ];
    const fixed = run();
    assert.equal(patchWasmMatMul(tf, false), false);
    const stock = run();
    assert.equal(patchWasmMatMul(tf, true), true);
    fixed.forEach((f, i) => {
      f.forEach((v, k) => {
        assert.ok(Math.abs(v - stock[i][k]) < 1e-5, `product ${i}[${k}]`);
      });
    });
    tf.dispose([a, b, c, d]);
  });

  test("asking for 'tensorflow' without tfjs-node says how to install it", async (t) => {
    let installed = true;
    try {
      await import('node:module').then((m) => m.createRequire(import.meta.url).resolve('@tensorflow/tfjs-node'));
    } catch {
      installed = false;
    }
    if (installed) return t.skip('tfjs-node is installed here');
    await assert.rejects(selectBackend('tensorflow'), /npm install @tensorflow\/tfjs-node/);
    await assert.rejects(selectBackend('gpu' as 'cpu'), /unknown backend 'gpu'; valid: auto, tensorflow, wasm, cpu/);
  });
});

describe('every activation trains a step and survives save → load → predict', () => {
  const data = clusters(48, 8, 3, 0.5, 5);
  for (const name of ACTIVATIONS) {
    test(name, async () => {
      const m = buildMlp(base({ activation: name }));
      const before = m.params.map((p) => p.value.slice());
      const res = await fit({
        tf,
        model: m,
        train: data,
        val: data,
        batchSize: 16,
        maxEpochs: 1,
        patience: null,
        lr: 1e-2,
        weightDecay: 1e-3,
        seed: 1,
      });
      assert.ok(Number.isFinite(res.history[0].train_loss));
      m.params.forEach((p, i) => {
        assert.notDeepEqual(p.value, before[i], `${p.name} moved`);
      });
      const dir = path.join(tmp, name);
      const saved = await saveModel(tf, m, dir, { classNames: ['a', 'b', 'c'] });
      assert.equal(saved.weightBytes, 4 * (parameterCount(m) + 2 * (12 + 6) * (name === 'glu' ? 2 : 1)));
      assert.equal(statSync(path.join(dir, 'weights.bin')).size, saved.weightBytes);
      const json = JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8'));
      assert.equal(json.format, 'layers-model');
      assert.deepEqual(json.weightsManifest[0].paths, ['weights.bin']);
      const loaded = await loadModel(tf, dir);
      assert.deepEqual(loaded.options, m.options);
      assert.deepEqual(loaded.metadata.classNames, ['a', 'b', 'c']);
      const probs = predictProba(tf, loaded.model, data.x, 8, 20);
      const passes = new Passes(tf, m);
      const expected = softmaxRows(passes.logits(data.x, 48), 3);
      passes.dispose();
      probs.forEach((p, i) => {
        assert.ok(Math.abs(p - expected[i]) < 1e-5, `prob ${i}: ${p} vs ${expected[i]}`);
      });
      loaded.model.dispose();
    });
  }
});

test('loading a folder without a model says which file is missing', async () => {
  const dir = path.join(tmp, 'nothing');
  assert.equal(existsSync(dir), false);
  await assert.rejects(loadModel(tf, dir), /cannot read the model at .*nothing\/model\.json/);
});
