// The embed stage's work: hash every image, look it up in the per-image cache, embed the missing ones
// in batches (the next batch is decoded and preprocessed while the model runs the current one), then
// write the matrix in manifest order, streaming row by row.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import type { StageContext } from '../../engine/index.ts';
import type { Manifest } from '../download/manifest.ts';
import type { EmbedParams } from '../embed-clip.ts';
import type { Materialized } from '../fetch-model.ts';
import { type Embedder, loadEmbedder, onnxRuntimeVersion, packageVersion } from './clip-embedder.ts';
import { EmbedCache, imageHash } from './embed-cache.ts';
import { missingFiles, missingModelMessage, modelDir, onnxFile } from './model-files.ts';
import { NpyWriter } from './npy.ts';

export interface EmbedMeta {
  model: string;
  source: string;
  note?: string;
  dtype: string;
  dim: number;
  count: number;
  normalize: boolean;
  /** Images embedded by the model in this run, and the model calls (batches) it took. */
  computed: number;
  model_calls: number;
  /** Images whose embedding came from the per-image cache. */
  cached: number;
  skipped: Array<{ id: string; path: string; error: string }>;
  cache_key: string;
  versions: Record<string, string>;
  seconds: number;
  /** Seconds spent hashing images, loading the model, embedding, writing the outputs. */
  phases: Record<string, number>;
  images_per_second: number | null;
}

interface Item {
  id: string;
  label: string;
  file: string;
  hash: string;
}

export async function embedAll(ctx: StageContext<EmbedParams>): Promise<EmbedMeta> {
  const p = ctx.params.embed;
  const started = performance.now();
  const [facesDir, modelsRoot] = ctx.deps;
  const [outDir, cacheRoot] = ctx.outs;
  const manifest = JSON.parse(readFileSync(path.join(facesDir, 'manifest.json'), 'utf8')) as Manifest;
  const dir = modelDir(modelsRoot, p.model);
  const missing = missingFiles(dir, p.dtype);
  if (missing.length > 0) throw new Error(missingModelMessage(ctx.root, dir, p.model, p.dtype, missing));
  const materialized = readJson<Materialized>(path.join(dir, 'materialized.json'));
  if (!Number.isInteger(p.batch) || p.batch < 1)
    throw new Error(`embed.batch must be a positive integer, not ${p.batch}`);

  // The cache key: everything that changes an image's embedding, and nothing else. The model files'
  // hashes are the engine's (models/ is a dep), not read again: a ViT-B/32 file is 350 MB.
  const modelHashes = ctx.depFiles(modelsRoot);
  const keyParts = {
    model: p.model,
    files: Object.fromEntries(
      ['config.json', 'preprocessor_config.json', onnxFile(p.dtype)].map((f) => {
        const hash = modelHashes.get(path.relative(modelsRoot, path.join(dir, f)).split(path.sep).join('/'));
        if (!hash)
          throw new Error(`${path.relative(ctx.root, path.join(dir, f))} appeared after the run began; run again`);
        return [f, hash];
      }),
    ),
    dtype: p.dtype,
    preprocessor: readJson(path.join(dir, 'preprocessor_config.json')),
    onnxruntime: onnxRuntimeVersion(),
  };
  const cache = new EmbedCache(cacheRoot, keyParts);

  // Every image's content hash: the engine's own (it hashed data/faces for the fingerprint), else read.
  const tHash = performance.now();
  const known = ctx.depFiles(facesDir);
  const items: Item[] = [];
  for (const group of chunk(manifest.items, 64)) {
    ctx.signal.throwIfAborted();
    const files = group.map((m) => path.join(facesDir, m.path));
    const hashes = await Promise.all(
      group.map(async (m, i) => known.get(m.path) ?? imageHash(await readFile(files[i]))),
    );
    for (const [i, m] of group.entries()) items.push({ id: m.id, label: m.label, file: files[i], hash: hashes[i] });
    ctx.progress({ done: items.length, total: manifest.items.length, unit: 'images', message: 'hashing' });
  }
  const todo = [...new Map(items.filter((it) => !cache.has(it.hash)).map((it) => [it.hash, it])).values()];
  const failed = new Map<string, string>();
  let computed = 0;
  let calls = 0;
  const phases = { hash: (performance.now() - tHash) / 1000, load: 0, embed: 0, write: 0 };
  let t0 = performance.now();

  if (todo.length > 0) {
    ctx.log.info(`embedding ${todo.length} of ${items.length} images (${items.length - todo.length} cached)`);
    // Preprocessing runs in worker threads, beside onnxruntime's own threads: with a small model it is
    // most of the work, with a large one the workers wait on the model most of the time.
    const embedder = await loadEmbedder({
      modelsRoot,
      id: p.model,
      dtype: p.dtype,
      threads: p.threads,
      // No more workers than batches: a small increment should not pay for idle ones.
      preprocessWorkers: Math.min(availableParallelism(), 4, Math.ceil(todo.length / p.batch)),
    });
    phases.load = (performance.now() - t0) / 1000;
    t0 = performance.now();
    try {
      const batches = chunk(todo, p.batch);
      const prepare = async (batch: Item[]) =>
        embedder.preprocess(await Promise.all(batch.map((it) => readFile(it.file))));
      // Decode and preprocess up to AHEAD batches while the model runs the current one.
      const AHEAD = 3;
      const queue = batches.slice(0, AHEAD).map(prepare);
      for (const [b, batch] of batches.entries()) {
        ctx.signal.throwIfAborted();
        const { pixels, errors } = await (queue.shift() as ReturnType<typeof prepare>);
        if (b + AHEAD < batches.length) queue.push(prepare(batches[b + AHEAD]));
        const ok = batch.filter((it, i) => {
          if (errors[i] === undefined) return true;
          if (p.on_error === 'fail') {
            throw new Error(
              `${path.relative(ctx.root, it.file)} (image ${it.id}) cannot be read: ${errors[i]}. ` +
                'Replace the file (rerun download), or set embed.on_error: skip to leave it out.',
            );
          }
          failed.set(it.hash, errors[i] as string);
          ctx.log.warn(`skipped ${path.relative(ctx.root, it.file)}: ${errors[i]}`);
          return false;
        });
        if (pixels !== undefined) {
          const rows = await runChecked(embedder, pixels);
          calls++;
          for (const [i, row] of rows.entries()) cache.add(ok[i].hash, row);
          computed += rows.length;
        }
        const secs = (performance.now() - t0) / 1000;
        ctx.progress({
          done: computed + failed.size,
          total: todo.length,
          unit: 'images',
          message: `${(computed / Math.max(secs, 1e-3)).toFixed(1)} img/s`,
        });
      }
    } finally {
      // Whatever finished stays cached, even on Ctrl-C or a failure: a rerun resumes from here.
      cache.flush();
      await embedder.dispose();
    }
  }
  const embedSecs = (performance.now() - t0) / 1000;
  if (todo.length > 0) phases.embed = embedSecs;
  const tWrite = performance.now();

  // The outputs, in manifest order, one row at a time.
  mkdirSync(outDir, { recursive: true });
  const kept = items.filter((it) => !failed.has(it.hash));
  const skipped = items
    .filter((it) => failed.has(it.hash))
    .map((it) => ({ id: it.id, path: path.relative(facesDir, it.file), error: failed.get(it.hash) as string }));
  const npy = new NpyWriter(path.join(outDir, 'embeddings.npy'), kept.length, cache.dim);
  const row = new Float32Array(cache.dim);
  for (const it of kept) {
    if (!cache.read(it.hash, row)) throw new Error(`embedding of image ${it.id} vanished from the cache`);
    if (p.normalize) normalize(row);
    npy.write(row);
  }
  npy.close();
  cache.close();
  writeFileSync(
    path.join(outDir, 'ids.csv'),
    `row,id,label\n${kept.map((it, i) => `${i},${it.id},${csvField(it.label)}`).join('\n')}\n`,
  );
  phases.write = (performance.now() - tWrite) / 1000;
  const meta: EmbedMeta = {
    model: p.model,
    source: materialized?.source ?? 'local',
    ...(materialized?.note ? { note: materialized.note } : {}),
    dtype: p.dtype,
    dim: cache.dim,
    count: kept.length,
    normalize: p.normalize,
    computed,
    model_calls: calls,
    cached: kept.length - computed,
    skipped,
    cache_key: path.basename(cache.dir),
    versions: {
      node: process.versions.node,
      onnxruntime: keyParts.onnxruntime,
      transformers: packageVersion('@huggingface/transformers'),
    },
    seconds: Number(((performance.now() - started) / 1000).toFixed(2)),
    phases: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, Number(v.toFixed(2))])),
    images_per_second: computed > 0 ? Number((computed / embedSecs).toFixed(1)) : null,
  };
  writeFileSync(path.join(outDir, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
  ctx.log.info(
    `${kept.length} embeddings of ${cache.dim} values: ${computed} computed in ${calls} model calls, ` +
      `${meta.cached} from the cache${skipped.length ? `, ${skipped.length} images skipped` : ''}`,
  );
  return meta;
}

async function runChecked(embedder: Embedder, pixels: unknown): Promise<Float32Array[]> {
  const rows = await embedder.run(pixels);
  for (const r of rows) {
    if (!r.every(Number.isFinite)) throw new Error('the model returned a non-finite embedding (NaN or Infinity)');
  }
  return rows;
}

function normalize(v: Float32Array): void {
  let s = 0;
  for (const x of v) s += x * x;
  const n = Math.sqrt(s);
  if (n > 0) for (let i = 0; i < v.length; i++) v[i] /= n;
}

const chunk = <T>(xs: T[], n: number): T[][] =>
  Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, (i + 1) * n));

const csvField = (s: string) => (/[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);

function readJson<T = Record<string, unknown>>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
