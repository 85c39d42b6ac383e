// A CLIP vision model behind one small interface: load it from models/<id>/ through transformers.js
// (`CLIPVisionModelWithProjection` + `AutoProcessor`, never the network: the `model` stage has put the
// files there), preprocess image bytes, and run batches. Third-party code stays behind this file.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Dtype } from './model-files.ts';

export interface EmbedderOptions {
  /** The folder that holds models/<id>/ (transformers.js's `localModelPath`). */
  modelsRoot: string;
  id: string;
  dtype: Dtype;
  /** onnxruntime intra-op threads; 0 lets onnxruntime decide. */
  threads: number;
  /** Worker threads that decode and preprocess (at least 1). */
  preprocessWorkers: number;
}

/** Preprocessed pixels for a batch, opaque to the caller. */
export type Pixels = unknown;

export interface Embedder {
  /**
   * Decode and preprocess image files' bytes (sharp + the model's CLIP preprocessor). An image that
   * cannot be decoded gets its error in `errors` and no row in `pixels` (undefined if none decoded).
   */
  preprocess(images: Buffer[]): Promise<{ pixels?: Pixels; errors: Array<string | undefined> }>;
  /** One model call: a row of `dim` float32 per image. */
  run(pixels: Pixels): Promise<Float32Array[]>;
  dispose(): Promise<void>;
}

/** The version of package `name` as resolved from `from` (a file path or URL): its package.json above its entry. */
export function packageVersion(name: string, from: string = import.meta.url): string {
  try {
    const entry = createRequire(from).resolve(name);
    for (let dir = path.dirname(entry); dir !== path.dirname(dir); dir = path.dirname(dir)) {
      const file = path.join(dir, 'package.json');
      if (!existsSync(file)) continue;
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === name) return pkg.version ?? 'unknown';
    }
  } catch {
    // not resolvable from here
  }
  return 'unknown';
}

/** The onnxruntime-node that transformers.js itself loads. */
export const onnxRuntimeVersion = () =>
  packageVersion('onnxruntime-node', createRequire(import.meta.url).resolve('@huggingface/transformers'));

export async function loadEmbedder(opts: EmbedderOptions): Promise<Embedder> {
  const t = await import('@huggingface/transformers');
  t.env.allowRemoteModels = false;
  t.env.allowLocalModels = true;
  t.env.localModelPath = `${opts.modelsRoot}${path.sep}`;
  t.env.useBrowserCache = false;
  // The model and the preprocessing workers (each with the model's processor) load at the same time.
  const [model, pool] = await Promise.all([
    t.CLIPVisionModelWithProjection.from_pretrained(opts.id, {
      dtype: opts.dtype,
      device: 'cpu',
      session_options: opts.threads > 0 ? { intraOpNumThreads: opts.threads, interOpNumThreads: 1 } : {},
    }),
    PreprocessPool.start(opts, Math.max(1, opts.preprocessWorkers)),
  ]);

  return {
    async preprocess(images) {
      const r = await pool.run(images);
      return { pixels: r.data ? new t.Tensor('float32', r.data, r.dims as number[]) : undefined, errors: r.errors };
    },
    async run(pixels) {
      const out = (await model({ pixel_values: pixels })) as Record<string, { dims: number[]; data: Float32Array }>;
      const embeds = out.image_embeds;
      if (!embeds) {
        throw new Error(
          `model '${opts.id}' returned ${Object.keys(out).join(', ') || 'nothing'}, not image_embeds: ` +
            'a CLIP vision model with projection (onnx/vision_model*.onnx) must output image_embeds [batch, dim]',
        );
      }
      const [n, dim] = embeds.dims;
      const batch = (pixels as { dims: number[] }).dims[0];
      if (embeds.dims.length !== 2 || n !== batch || !(dim > 0)) {
        throw new Error(
          `model '${opts.id}' output image_embeds has shape [${embeds.dims.join(', ')}]; expected [${batch}, dim]`,
        );
      }
      return Array.from({ length: n }, (_, i) => embeds.data.slice(i * dim, (i + 1) * dim));
    },
    async dispose() {
      await pool.stop();
      await model.dispose();
    },
  };
}

interface Preprocessed {
  id?: number;
  data?: Float32Array;
  dims?: number[];
  errors: Array<string | undefined>;
  fatal?: string;
}

/** Worker threads running the model's processor; batches go round-robin, answers come back by id. */
class PreprocessPool {
  private next = 0;
  private seq = 0;
  private waiting = new Map<number, { resolve: (r: Preprocessed) => void; reject: (e: Error) => void }>();

  private constructor(private workers: Worker[]) {
    for (const w of workers) {
      w.on('message', (m: Preprocessed) => {
        const p = this.waiting.get(m.id as number);
        if (!p) return;
        this.waiting.delete(m.id as number);
        if (m.fatal) p.reject(new Error(`preprocessing failed: ${m.fatal}`));
        else p.resolve(m);
      });
      w.on('error', (e) => {
        for (const p of this.waiting.values()) p.reject(e);
        this.waiting.clear();
      });
    }
  }

  static async start(opts: EmbedderOptions, n: number): Promise<PreprocessPool> {
    const file = new URL('./preprocess-worker.mjs', import.meta.url);
    const workers = await Promise.all(
      Array.from({ length: n }, async () => {
        const w = new Worker(file, {
          workerData: { localModelPath: `${opts.modelsRoot}${path.sep}`, id: opts.id },
          execArgv: [],
        });
        await new Promise<void>((resolve, reject) => {
          w.once('message', () => resolve());
          w.once('error', reject);
        });
        return w;
      }),
    );
    return new PreprocessPool(workers);
  }

  run(images: Buffer[]): Promise<Preprocessed> {
    const id = this.seq++;
    const w = this.workers[this.next++ % this.workers.length];
    const buffers = images.map((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      w.postMessage({ id, images: buffers }, buffers as ArrayBuffer[]);
    });
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
