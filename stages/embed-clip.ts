// The `embed` stage: CLIP image embeddings of every face in data/faces, through transformers.js.
//
//   data/faces/manifest.json + models/<id>/  ->  artifacts/embeddings/embeddings.npy  float32 [n, dim]
//                                                artifacts/embeddings/ids.csv        row order: id, label
//                                                artifacts/embeddings/meta.json      model, counts, versions
//
// Each image's embedding is cached by (image bytes, model files, dtype, preprocessing, onnxruntime) in
// artifacts/embed-cache/ (a persisted out: it travels with push / pull), so adding images embeds only
// the new ones, and the model is not even loaded when every image is cached.

import { stage } from '../engine/index.ts';
import type { Dtype } from './embed/model-files.ts';

export interface EmbedParams {
  embed: {
    model: string;
    dtype: Dtype;
    batch: number;
    threads: number;
    normalize: boolean;
    on_error: 'skip' | 'fail';
  };
}

export default stage<EmbedParams>('embed', {
  description: 'image embeddings (CLIP via transformers.js) -> artifacts/embeddings',
  deps: ['data/faces', 'models'],
  params: ['embed.model', 'embed.dtype', 'embed.batch', 'embed.threads', 'embed.normalize', 'embed.on_error'],
  outs: ['artifacts/embeddings', { path: 'artifacts/embed-cache', persist: true }],
  async run(ctx) {
    const { embedAll } = await import('./embed/embed-all.ts');
    await embedAll(ctx);
  },
});
