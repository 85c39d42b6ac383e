// A worker thread that decodes and preprocesses images with the model's own CLIP processor
// (transformers.js AutoProcessor), so that preprocessing runs on another core while onnxruntime runs
// the previous batch. Plain JS: it needs no TypeScript loader.
//
//   in:  { id, images: ArrayBuffer[] }          the image files' bytes
//   out: { id, data?: Float32Array, dims?, errors }  pixel_values of the decodable ones, in order

import { parentPort, workerData } from 'node:worker_threads';
import { AutoProcessor, env, RawImage } from '@huggingface/transformers';

env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = workerData.localModelPath;
env.useBrowserCache = false;
const processor = await AutoProcessor.from_pretrained(workerData.id);

parentPort.on('message', async ({ id, images }) => {
  const errors = [];
  try {
    const decoded = await Promise.all(
      images.map((b, i) =>
        RawImage.fromBlob(new Blob([new Uint8Array(b)])).catch((e) => {
          errors[i] = String(e?.message ?? e).split('\n')[0];
          return undefined;
        }),
      ),
    );
    const good = decoded.filter((r) => r !== undefined);
    if (good.length === 0) return parentPort.postMessage({ id, errors });
    const { pixel_values } = await processor(good);
    const data = pixel_values.data;
    parentPort.postMessage({ id, data, dims: pixel_values.dims, errors }, [data.buffer]);
  } catch (e) {
    parentPort.postMessage({ id, fatal: String(e?.stack ?? e), errors });
  }
});
parentPort.postMessage({ ready: true });
