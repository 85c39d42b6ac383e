// Classification metrics for the evaluate stage: pure functions of (true labels, predicted labels).
// Conventions follow scikit-learn's classification_report: a class never predicted has precision 0, a class
// absent from the truth has recall 0, and F1 is 0 when precision + recall is 0. Macro-F1 averages over all
// given classes, present or not.

export interface ClassMetrics {
  name: string;
  precision: number;
  recall: number;
  f1: number;
  support: number; // rows whose true label is this class
}

export interface ClassificationReport {
  accuracy: number;
  macroF1: number;
  perClass: ClassMetrics[];
  confusion: number[][]; // confusion[true][predicted]
  classNames: string[];
  total: number;
}

function check(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, classes: number): void {
  if (yTrue.length !== yPred.length) {
    throw new Error(`metrics: ${yTrue.length} true labels but ${yPred.length} predictions`);
  }
  for (const [what, ys] of [
    ['true', yTrue],
    ['predicted', yPred],
  ] as const) {
    for (let i = 0; i < ys.length; i++) {
      const c = ys[i];
      if (!Number.isInteger(c) || c < 0 || c >= classes) {
        throw new Error(`metrics: ${what} label ${c} at row ${i} is not a class index 0…${classes - 1}`);
      }
    }
  }
}

export function accuracy(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): number {
  if (yTrue.length !== yPred.length)
    throw new Error(`metrics: ${yTrue.length} true labels but ${yPred.length} predictions`);
  if (yTrue.length === 0) return 0;
  let ok = 0;
  for (let i = 0; i < yTrue.length; i++) if (yTrue[i] === yPred[i]) ok++;
  return ok / yTrue.length;
}

/** Rows = true class, columns = predicted class. */
export function confusionMatrix(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, classes: number): number[][] {
  check(yTrue, yPred, classes);
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < yTrue.length; i++) m[yTrue[i]][yPred[i]]++;
  return m;
}

export function perClassMetrics(confusion: number[][], classNames: string[]): ClassMetrics[] {
  return classNames.map((name, c) => {
    const tp = confusion[c][c];
    const support = confusion[c].reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, row) => a + row[c], 0);
    const precision = predicted > 0 ? tp / predicted : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    return { name, precision, recall, f1, support };
  });
}

export function macroF1(perClass: ClassMetrics[]): number {
  return perClass.length ? perClass.reduce((a, m) => a + m.f1, 0) / perClass.length : 0;
}

/** Index of the largest value in each row of a rows × classes matrix (first one on ties). */
export function argmaxRows(probabilities: ArrayLike<number>, classes: number): Int32Array {
  const rows = Math.floor(probabilities.length / classes);
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (probabilities[r * classes + c] > probabilities[r * classes + best]) best = c;
    out[r] = best;
  }
  return out;
}

export function classificationReport(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  classNames: string[],
): ClassificationReport {
  if (classNames.length === 0) throw new Error('metrics: no class names given');
  const confusion = confusionMatrix(yTrue, yPred, classNames.length);
  const perClass = perClassMetrics(confusion, classNames);
  return {
    accuracy: accuracy(yTrue, yPred),
    macroF1: macroF1(perClass),
    perClass,
    confusion,
    classNames,
    total: yTrue.length,
  };
}
