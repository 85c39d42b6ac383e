// The trained MLP as a TensorFlow.js layers model on disk, without tfjs-node (whose `file://` handler is
// the usual way): the model is rebuilt from tf.layers, saved through tf.io.withSaveHandler, and the files
// are written here in the same layout tfjs-node writes:
//
//   <dir>/model.json    {format: "layers-model", modelTopology, weightsManifest: [{paths: ["weights.bin"]}], …}
//   <dir>/weights.bin   all weights, float32, in manifest order
//
// The saved graph ends in a softmax, so `predict` gives probabilities. Activations tfjs lacks are the
// registered `TorchActivation` layer: importing this module (or activations.ts) is enough to load them.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type * as tfjs from '@tensorflow/tfjs';
import { activationLayer } from './activations.ts';
import { BN_EPS, BN_MOMENTUM } from './backprop.ts';
import type { Mlp, MlpOptions } from './model.ts';

type TF = typeof tfjs;

export const MODEL_FILE = 'model.json';
export const WEIGHTS_FILE = 'weights.bin';

/** The equivalent tf.layers model, weights copied in (BN running statistics become its moving ones). */
export function toLayersModel(tf: TF, m: Mlp): tfjs.Sequential {
  const o = m.options;
  const seq = tf.sequential({ name: 'mlp' });
  const t = (p: { value: Float32Array; shape: number[] }) => tf.tensor(p.value, p.shape);
  tf.tidy(() => {
    m.blocks.forEach((b, i) => {
      const dense = tf.layers.dense({
        units: b.units,
        name: `dense_${i}`,
        ...(i === 0 ? { inputShape: [o.inputDim] } : {}),
      });
      seq.add(dense);
      dense.setWeights([t(b.weight), t(b.bias)]);
      if (b.gamma && b.beta && b.runningMean && b.runningVar) {
        const bn = tf.layers.batchNormalization({ momentum: 1 - BN_MOMENTUM, epsilon: BN_EPS, name: `batchnorm_${i}` });
        seq.add(bn);
        bn.setWeights([t(b.gamma), t(b.beta), tf.tensor(b.runningMean), tf.tensor(b.runningVar)]);
      }
      const act = activationLayer(m.activationName, `${m.activationName}_${i}`);
      seq.add(act);
      if (b.alpha) act.setWeights([t(b.alpha)]);
      if (o.dropout > 0) seq.add(tf.layers.dropout({ rate: o.dropout, name: `dropout_${i}` }));
    });
    const head = tf.layers.dense({
      units: o.classes,
      name: 'head',
      ...(m.blocks.length === 0 ? { inputShape: [o.inputDim] } : {}),
    });
    seq.add(head);
    head.setWeights([t(m.head.weight), t(m.head.bias)]);
    seq.add(tf.layers.activation({ activation: 'softmax', name: 'probabilities' }));
  });
  return seq;
}

export interface SavedModelInfo {
  files: string[]; // absolute paths written
  weightBytes: number;
}

/** Writes model.json + weights.bin into `dir` (created). `metadata` lands in userDefinedMetadata. */
export async function saveModel(
  tf: TF,
  m: Mlp,
  dir: string,
  metadata: Record<string, unknown> = {},
): Promise<SavedModelInfo> {
  const seq = toLayersModel(tf, m);
  let weightBytes = 0;
  try {
    await seq.save(
      tf.io.withSaveHandler(async (artifacts) => {
        const weights = tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? new ArrayBuffer(0));
        weightBytes = weights.byteLength;
        const json = {
          format: artifacts.format,
          generatedBy: artifacts.generatedBy,
          convertedBy: artifacts.convertedBy ?? null,
          modelTopology: artifacts.modelTopology,
          weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
          userDefinedMetadata: { ...metadata, mlp: m.options },
        };
        mkdirSync(dir, { recursive: true });
        writeFileSync(path.join(dir, WEIGHTS_FILE), new Uint8Array(weights));
        writeFileSync(path.join(dir, MODEL_FILE), `${JSON.stringify(json)}\n`);
        return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
      }),
    );
  } finally {
    seq.dispose();
  }
  return { files: [path.join(dir, MODEL_FILE), path.join(dir, WEIGHTS_FILE)], weightBytes };
}

export interface LoadedModel {
  model: tfjs.LayersModel;
  options: MlpOptions | null; // how it was built, when saved by saveModel
  metadata: Record<string, unknown>; // userDefinedMetadata, as saved
}

/** Reads a layers model from `dir` (any tfjs layers-model folder, not only ours). */
export async function loadModel(tf: TF, dir: string): Promise<LoadedModel> {
  const file = path.join(dir, MODEL_FILE);
  let json: tfjs.io.ModelJSON;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read the model at ${file}: ${(e as Error).message}`);
  }
  const manifest = json.weightsManifest ?? [];
  const buffers = manifest.flatMap((g) =>
    g.paths.map((p) => {
      const b = readFileSync(path.join(dir, p));
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    }),
  );
  const model = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      format: json.format,
      generatedBy: json.generatedBy,
      convertedBy: json.convertedBy,
      weightSpecs: manifest.flatMap((g) => g.weights),
      weightData: tf.io.CompositeArrayBuffer.join(buffers),
      userDefinedMetadata: json.userDefinedMetadata,
    }),
  );
  const metadata = (json.userDefinedMetadata ?? {}) as Record<string, unknown>;
  return { model, options: (metadata.mlp as MlpOptions | undefined) ?? null, metadata };
}

/** Class probabilities for a rows × cols matrix, `batchSize` rows at a time: rows × classes, row-major. */
export function predictProba(tf: TF, model: tfjs.LayersModel, x: Float32Array, cols: number, batchSize = 1024) {
  if (x.length % cols !== 0) throw new Error(`predict: ${x.length} values is not a whole number of rows of ${cols}`);
  const rows = x.length / cols;
  const classes = (model.outputs[0].shape[1] as number | null) ?? 0;
  const out = new Float32Array(rows * classes);
  for (let start = 0; start < rows; start += batchSize) {
    const n = Math.min(batchSize, rows - start);
    tf.tidy(() => {
      const input = tf.tensor2d(x.subarray(start * cols, (start + n) * cols), [n, cols]);
      const p = model.predict(input) as tfjs.Tensor;
      out.set(p.dataSync(), start * classes);
    });
  }
  return out;
}
