// Classification metrics against values worked out by hand (and scikit-learn's conventions for the edges).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  accuracy,
  argmaxRows,
  classificationReport,
  confusionMatrix,
  macroF1,
  perClassMetrics,
} from '../stages/train/metrics.ts';

const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

// 10 rows, 3 classes:
//   true:  0 0 0 0 1 1 1 2 2 2
//   pred:  0 0 1 2 1 1 0 2 2 1
const yTrue = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2];
const yPred = [0, 0, 1, 2, 1, 1, 0, 2, 2, 1];

test('confusion matrix: rows are the truth, columns the prediction', () => {
  assert.deepEqual(confusionMatrix(yTrue, yPred, 3), [
    [2, 1, 1],
    [1, 2, 0],
    [0, 1, 2],
  ]);
});

test('accuracy, per-class precision/recall/F1/support, macro-F1', () => {
  const r = classificationReport(yTrue, yPred, ['open', 'closed', 'blink']);
  near(r.accuracy, 6 / 10, 'accuracy');
  assert.equal(r.total, 10);
  // class 0: tp 2, predicted 3, support 4 → P 2/3, R 1/2, F1 = 2·(1/3)/(7/6) = 4/7
  // class 1: tp 2, predicted 4, support 3 → P 1/2, R 2/3, F1 = 4/7
  // class 2: tp 2, predicted 3, support 3 → P 2/3, R 2/3, F1 = 2/3
  const [c0, c1, c2] = r.perClass;
  assert.equal(c0.name, 'open');
  near(c0.precision, 2 / 3, 'P0');
  near(c0.recall, 1 / 2, 'R0');
  near(c0.f1, 4 / 7, 'F1_0');
  assert.equal(c0.support, 4);
  near(c1.precision, 1 / 2, 'P1');
  near(c1.recall, 2 / 3, 'R1');
  near(c1.f1, 4 / 7, 'F1_1');
  near(c2.f1, 2 / 3, 'F1_2');
  assert.equal(c2.support, 3);
  near(r.macroF1, (4 / 7 + 4 / 7 + 2 / 3) / 3, 'macro-F1');
  assert.deepEqual(r.classNames, ['open', 'closed', 'blink']);
});

test('a class never predicted or never present scores 0, not NaN', () => {
  const cm = confusionMatrix([0, 0, 1], [0, 0, 0], 3);
  const m = perClassMetrics(cm, ['a', 'b', 'c']);
  near(m[0].precision, 2 / 3, 'P0');
  near(m[0].f1, 0.8, 'F1_0');
  assert.deepEqual(
    m.slice(1).map((c) => [c.precision, c.recall, c.f1, c.support]),
    [
      [0, 0, 0, 1], // present once, never predicted
      [0, 0, 0, 0], // never present, never predicted
    ],
  );
  near(macroF1(m), 0.8 / 3, 'macro-F1 averages over every given class');
});

test('argmax over probability rows, first on ties', () => {
  assert.deepEqual(Array.from(argmaxRows(Float32Array.from([0.2, 0.8, 0.5, 0.5, 0.9, 0.1]), 2)), [1, 0, 0]);
});

test('mismatched lengths and out-of-range labels are errors', () => {
  assert.throws(() => accuracy([0, 1], [0]), /2 true labels but 1 predictions/);
  assert.throws(() => confusionMatrix([0, 3], [0, 1], 3), /true label 3 at row 1 is not a class index 0…2/);
  assert.throws(() => classificationReport([0], [0], []), /no class names/);
  assert.equal(accuracy([], []), 0);
});
