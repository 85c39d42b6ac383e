// The `train` stage: the seed study's MLP on the embeddings, in TensorFlow.js (see stages/train/).
//
//   artifacts/embeddings + artifacts/split  ->  artifacts/train/model/   model.json + weights.bin (tfjs)
//                                               artifacts/train/history.json   per-epoch loss/acc, backend
//
// Every value comes from `train.*` (configs/unified_best_relu.yaml is the seed's recipe). The backend
// (`train.backend: auto`) is tfjs-node-gpu / tfjs-node when installed, else WebAssembly, else pure JS.

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stage } from '../engine/index.ts';
import type { BackendName } from './train/backend.ts';

export interface TrainParams {
  train: {
    hidden: number[];
    activation: string;
    batchnorm: boolean;
    dropout: number;
    optimizer: string;
    lr: number;
    weight_decay: number;
    batch_size: number;
    max_epochs: number;
    patience: number | null;
    seed: number;
    backend: BackendName;
  };
}

export default stage<TrainParams>('train', {
  description: 'MLP on the embeddings (TensorFlow.js, AdamW, early stopping) -> artifacts/train',
  // The matrix and its row index, not meta.json: that records timings, and an embed rerun that gives the
  // same embeddings must not retrain.
  deps: ['artifacts/embeddings/embeddings.npy', 'artifacts/embeddings/ids.csv', 'artifacts/split'],
  params: ['train.*'],
  outs: ['artifacts/train'],
  async run(ctx) {
    const t = ctx.params.train;
    if (t.optimizer !== 'adamw') throw new Error(`train.optimizer '${t.optimizer}' is unknown: use adamw`);
    const { selectBackend } = await import('./train/backend.ts');
    const { buildMlp, parameterCount } = await import('./train/model.ts');
    const { fit, NonFiniteLossError } = await import('./train/fit.ts');
    const { saveModel } = await import('./train/save.ts');
    const { loadSplitData } = await import('./train/load-data.ts');

    const [npy, , split] = ctx.deps;
    const [out] = ctx.outs;
    const started = performance.now();
    const data = loadSplitData(path.dirname(npy), split);
    const backend = await selectBackend(t.backend, (m) => ctx.log.info(m));
    ctx.log.info(`backend: ${backend.detail}`);
    const model = buildMlp({
      inputDim: data.dim,
      classes: data.classes.length,
      hidden: t.hidden,
      activation: t.activation,
      batchnorm: t.batchnorm,
      dropout: t.dropout,
      seed: t.seed,
    });
    ctx.log.info(
      `${parameterCount(model)} parameters; ${data.parts.train.y.length} train / ${data.parts.val.y.length} val rows, ${data.classes.length} classes`,
    );
    const save = async (dir: string, extra: Record<string, unknown>) =>
      saveModel(backend.tf, model, dir, { classes: data.classes, backend: backend.backend, ...extra });

    let result: Awaited<ReturnType<typeof fit>>;
    try {
      result = await fit({
        tf: backend.tf,
        model,
        train: data.parts.train,
        val: data.parts.val,
        batchSize: t.batch_size,
        maxEpochs: t.max_epochs,
        patience: t.patience,
        lr: t.lr,
        weightDecay: t.weight_decay,
        seed: t.seed,
        signal: ctx.signal,
        onEpoch: (h, p) =>
          ctx.progress({
            done: h.epoch,
            total: t.max_epochs,
            unit: 'epochs',
            message:
              `loss ${h.train_loss.toFixed(3)} acc ${h.train_acc.toFixed(3)} val_loss ${h.val_loss.toFixed(3)} ` +
              `val_acc ${h.val_acc.toFixed(3)}${p.patienceLeft === null ? '' : ` patience ${p.patienceLeft}`}`,
          }),
      });
    } catch (e) {
      if (e instanceof NonFiniteLossError) {
        // The model holds the last good weights: keep them beside the outs (a failed stage's outs are
        // put back to the previous run's), and say where.
        const keep = path.join(path.dirname(out), 'train.last-good');
        await save(path.join(keep, 'model'), { diverged_in_epoch: e.epoch, best_epoch: e.bestEpoch });
        throw new Error(`${e.message}\nThe last good checkpoint is in ${path.relative(ctx.root, keep)}/model.`);
      }
      throw e;
    }

    mkdirSync(out, { recursive: true });
    await save(path.join(out, 'model'), { best_epoch: result.bestEpoch });
    const seconds = (performance.now() - started) / 1000;
    const record = {
      backend: backend.backend,
      backend_detail: backend.detail,
      best_epoch: result.bestEpoch,
      stopped_epoch: result.stoppedEpoch,
      stopped_early: result.stoppedEarly,
      samples_per_second: Math.round(result.samplesPerSecond),
      seconds: Number(seconds.toFixed(2)),
      parameters: parameterCount(model),
      classes: data.classes,
      history: result.history,
    };
    writeFileSync(path.join(out, 'history.json'), `${JSON.stringify(record, null, 2)}\n`);
    const best = result.history[result.bestEpoch - 1];
    ctx.log.info(
      `best epoch ${result.bestEpoch} of ${result.stoppedEpoch}${result.stoppedEarly ? ' (stopped early)' : ''}: ` +
        `val_loss ${best?.val_loss.toFixed(4)} val_acc ${best?.val_acc.toFixed(4)}; ${record.samples_per_second} samples/s`,
    );
  },
});
