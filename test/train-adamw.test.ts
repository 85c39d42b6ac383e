// AdamW against values worked out by hand from torch.optim.AdamW's update rule (and checked once against
// torch 1.13: after the two steps below it holds [0.89900005, -1.998] and [0.87146735, -2.0704157]).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AdamW } from '../stages/train/adamw.ts';

const close = (actual: number, expected: number, what: string, tol = 1e-6) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected}`);

function param(values: number[]) {
  return { value: Float32Array.from(values), grad: new Float32Array(values.length) };
}

test('one step: decay, then a bias-corrected step of exactly lr·sign(g)', () => {
  // lr 0.1, wd 0.01, p = 1, g = 0.5:
  //   p ← 1 · (1 − 0.001) = 0.999
  //   m = 0.1·0.5 = 0.05,  v = 0.001·0.25 = 0.00025
  //   m̂ = 0.05 / (1 − 0.9) = 0.5,  √v̂ = √(0.00025 / 0.001) = 0.5
  //   p ← 0.999 − 0.1 · 0.5 / (0.5 + 1e-8) = 0.899000002
  // and p = −2 with g = 0 only decays: −2 · 0.999 = −1.998
  const p = param([1, -2]);
  const opt = new AdamW([p], { lr: 0.1, weightDecay: 0.01 });
  p.grad.set([0.5, 0]);
  opt.step();
  close(p.value[0], 0.899000002, 'p[0] after step 1');
  close(p.value[1], -1.998, 'p[1] after step 1');
  assert.equal(opt.steps, 1);
});

test('two steps: moments carry over and the bias corrections use t = 2', () => {
  // second step, g = [−0.25, 3]:
  //   p[0]: p ← 0.899000002 · 0.999 = 0.898101002
  //         m = 0.9·0.05 + 0.1·(−0.25) = 0.02;  v = 0.999·0.00025 + 0.001·0.0625 = 0.00031225
  //         m̂ = 0.02 / 0.19 = 0.105263158;  √v̂ = √(0.00031225 / 0.001999) = 0.395225848
  //         p ← 0.898101002 − 0.1 · 0.105263158 / 0.395225858 = 0.871467299
  //   p[1]: p ← −1.998 · 0.999 = −1.996002;  m = 0.3, v = 0.009
  //         m̂ = 0.3 / 0.19 = 1.578947368;  √v̂ = √(0.009 / 0.001999) = 2.121850…
  //         p ← −1.996002 − 0.1 · 1.578947368 / 2.121850 = −2.070415…
  const p = param([1, -2]);
  const opt = new AdamW([p], { lr: 0.1, weightDecay: 0.01 });
  p.grad.set([0.5, 0]);
  opt.step();
  p.grad.set([-0.25, 3]);
  opt.step();
  const mHat = 0.02 / 0.19;
  const vHatSqrt = Math.sqrt(0.00031225 / (1 - 0.999 ** 2));
  close(p.value[0], 0.899000002 * 0.999 - (0.1 * mHat) / (vHatSqrt + 1e-8), 'p[0] after step 2');
  close(p.value[0], 0.8714673, 'p[0] after step 2 (torch)');
  close(p.value[1], -1.998 * 0.999 - (0.1 * (0.3 / 0.19)) / (Math.sqrt(0.009 / (1 - 0.999 ** 2)) + 1e-8), 'p[1]');
  close(p.value[1], -2.0704157, 'p[1] after step 2 (torch)');
});

test('several parameters are updated in place, each with its own moments', () => {
  const a = param([1]);
  const b = param([1, 1]);
  const opt = new AdamW([a, b], { lr: 0.01, weightDecay: 0 });
  a.grad.set([1]);
  b.grad.set([-1, 0]);
  const before = a.value;
  opt.step();
  assert.equal(a.value, before, 'same array');
  close(a.value[0], 0.99, 'a: first step moves by lr against the gradient');
  close(b.value[0], 1.01, 'b[0]');
  close(b.value[1], 1, 'b[1]: zero gradient, no decay, no move');
});

test('betas and eps come from the options', () => {
  // β1 = 0.5, β2 = 0.5, eps = 1: m̂ = g, √v̂ = |g| = 2, step = lr · 2 / (2 + 1)
  const p = param([0]);
  const opt = new AdamW([p], { lr: 0.3, weightDecay: 0, beta1: 0.5, beta2: 0.5, eps: 1 });
  p.grad.set([2]);
  opt.step();
  close(p.value[0], -0.2, 'p');
});

test('bad hyperparameters are refused with their name', () => {
  assert.throws(() => new AdamW([], { lr: -1, weightDecay: 0 }), /AdamW lr must be a finite number >= 0, got -1/);
  assert.throws(() => new AdamW([], { lr: 1e-3, weightDecay: 0, beta1: 1 }), /AdamW beta1 must be in \[0, 1\)/);
});
