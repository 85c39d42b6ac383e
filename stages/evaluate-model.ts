// The `evaluate` stage: the trained model on the val and test rows.
//
//   artifacts/train/model + embeddings + split  ->  artifacts/metrics.json    (a metrics out)
//                                                   artifacts/per_class.csv   test set, per class
//
// metrics.json: accuracy, macro-F1 and loss on val and test, the generalisation gap (val - test, as
// the seed study reports it), per-class precision / recall / F1 and the confusion matrix (test).

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stage } from '../engine/index.ts';
import type { BackendName } from './train/backend.ts';

export interface EvaluateParams {
  train: { backend: BackendName };
}

export default stage<EvaluateParams>('evaluate', {
  description: 'accuracy, macro-F1, per-class metrics, confusion matrix -> artifacts/metrics.json',
  // The model only (not history.json, which records timings): the same weights give the same metrics,
  // and metrics.json holds nothing that varies from run to run.
  deps: [
    'artifacts/train/model',
    'artifacts/embeddings/embeddings.npy',
    'artifacts/embeddings/ids.csv',
    'artifacts/split',
  ],
  params: ['train.backend'],
  outs: [{ path: 'artifacts/metrics.json', role: 'metrics' }, 'artifacts/per_class.csv'],
  async run(ctx) {
    const { selectBackend } = await import('./train/backend.ts');
    const { loadModel, predictProba } = await import('./train/save.ts');
    const { argmaxRows, classificationReport } = await import('./train/metrics.ts');
    const { loadSplitData } = await import('./train/load-data.ts');
    const [modelDir, npy, , split] = ctx.deps;
    const [metricsFile, perClassFile] = ctx.outs;

    const data = loadSplitData(path.dirname(npy), split);
    const backend = await selectBackend(ctx.params.train.backend);
    const { model, metadata } = await loadModel(backend.tf, modelDir);
    const classes = (metadata.classes as string[] | undefined) ?? data.classes;
    if (JSON.stringify(classes) !== JSON.stringify(data.classes)) {
      throw new Error(
        `the model was trained on classes ${classes.join(', ')} but the data has ${data.classes.join(', ')}: rerun train`,
      );
    }

    const score = (part: 'val' | 'test') => {
      const d = data.parts[part];
      const probs = predictProba(backend.tf, model, d.x, data.dim, 1024);
      const k = classes.length;
      let loss = 0;
      for (let i = 0; i < d.y.length; i++) loss -= Math.log(Math.max(probs[i * k + d.y[i]], 1e-12));
      const report = classificationReport(d.y, argmaxRows(probs, k), classes);
      return { report, loss: loss / Math.max(1, d.y.length) };
    };
    const val = score('val');
    const test = score('test');
    model.dispose();
    const part = (s: typeof val) => ({
      accuracy: s.report.accuracy,
      macro_f1: s.report.macroF1,
      loss: Number(s.loss.toFixed(6)),
      n: s.report.total,
    });
    const metrics = {
      backend: backend.backend,
      classes,
      val: part(val),
      test: part(test),
      generalisation_gap: val.report.accuracy - test.report.accuracy,
      best_epoch: metadata.best_epoch,
      per_class: test.report.perClass.map((c) => ({
        class: c.name,
        precision: c.precision,
        recall: c.recall,
        f1: c.f1,
        support: c.support,
      })),
      confusion: { labels: classes, matrix: test.report.confusion },
    };
    writeFileSync(metricsFile, `${JSON.stringify(metrics, null, 2)}\n`);
    const rows = metrics.per_class.map(
      (c) => `${c.class},${c.precision.toFixed(4)},${c.recall.toFixed(4)},${c.f1.toFixed(4)},${c.support}`,
    );
    writeFileSync(perClassFile, `class,precision,recall,f1,support\n${rows.join('\n')}\n`);
    ctx.log.info(
      `test accuracy ${(100 * test.report.accuracy).toFixed(2)}% (val ${(100 * val.report.accuracy).toFixed(2)}%), macro-F1 ${test.report.macroF1.toFixed(4)}`,
    );
  },
});
