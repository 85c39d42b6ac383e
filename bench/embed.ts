// Benchmark (on demand: `npm run bench:embed`): the embed stage against bare onnxruntime.
//
//   1. overhead: images/s of the whole stage (CLI, hashing, decode, preprocess, cache, .npy) divided by
//      images/s of bare `session.run` on pre-made tensors, same model file, batch and threads.
//      Goal >= 0.9 with ViT-B/32's shapes (generated/vit-b32-random).
//   2. increment: the stage's time after adding 1% new images, as a share of the full run (goal <= 2%).
//   3. memory: peak RSS of the run (engine + stage worker, from getrusage of waited children) on
//      --rss-images images (goal < 1 GiB at 20,000).
//
// Options: --images N (overhead + increment run, 400), --model ID (both, default: each of the two
// generated models), --batch B (16), --threads T (1), --rss-images N (20000; 0 skips).
// Images are noise PNGs made with sharp (distinct, so nothing is deduplicated), not rendered faces.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import sharp from 'sharp';
import { writeManifest } from '../stages/download/manifest.ts';
import { MODEL_EMBED_PIPELINE, Project } from '../test/rig.ts';

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '400' },
    model: { type: 'string', multiple: true },
    batch: { type: 'string', default: '16' },
    threads: { type: 'string', default: '1' },
    'rss-images': { type: 'string', default: '20000' },
  },
});
const IMAGES = Number(values.images);
const MODELS = values.model ?? ['generated/tiny-clip', 'generated/vit-b32-random'];
const BATCH = Number(values.batch);
const THREADS = Number(values.threads);
const RSS_IMAGES = Number(values['rss-images']);
const note = (k: string, v: string) => console.log(`${k.padEnd(46)} ${v}`);

/** A project with model + embed only, over `count` noise images written here. */
async function project(count: number): Promise<Project> {
  const p = Project.repoCopy();
  p.write('pipeline.ts', MODEL_EMBED_PIPELINE);
  await addImages(p, 0, count);
  return p;
}

async function addImages(p: Project, from: number, to: number): Promise<void> {
  mkdirSync(p.path('data/faces/images'), { recursive: true });
  const manifestFile = p.path('data/faces/manifest.json');
  let items: Parameters<typeof writeManifest>[1]['items'] = [];
  try {
    items = JSON.parse(readFileSync(manifestFile, 'utf8')).items;
  } catch {}
  const noise = Buffer.alloc(96 * 96 * 3);
  for (let i = from; i < to; i++) {
    // An LCG in 32-bit integer arithmetic (Math.imul): every image distinct, none deduplicated.
    let s = Math.imul(i + 1, 2654435761) >>> 0;
    for (let j = 0; j < noise.length; j++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      noise[j] = s >>> 24;
    }
    const id = String(i).padStart(5, '0');
    const png = await sharp(noise, { raw: { width: 96, height: 96, channels: 3 } })
      .png()
      .toBuffer();
    writeFileSync(p.path(`data/faces/images/${id}.png`), png);
    items.push({ id, path: `images/${id}.png`, bytes: png.length, md5: '', label: String(i % 2), attributes: {} });
  }
  writeManifest(manifestFile, { dataset: 'bench', source: 'noise', target: 'x', excluded: {}, provenance: {}, items });
}

interface Meta {
  phases: Record<string, number>;
  computed: number;
  seconds: number;
  images_per_second: number;
}

async function runStage(p: Project, model: string): Promise<{ wall: number; meta: Meta; maxRssKb: number }> {
  const t0 = performance.now();
  // GNU time reports the peak RSS of the largest process it waited for, the stage worker included.
  const r = await execa(
    '/usr/bin/time',
    [
      '-f',
      'MAXRSS %M',
      process.execPath,
      '--import',
      'tsx',
      'pipeline.ts',
      'run',
      '--set',
      `embed.model=${model}`,
      '--set',
      `embed.batch=${BATCH}`,
      '--set',
      `embed.threads=${THREADS}`,
    ],
    { cwd: p.dir, reject: false, env: { NO_COLOR: '1' } },
  );
  const wall = (performance.now() - t0) / 1000;
  if (r.exitCode !== 0) throw new Error(`run failed:\n${r.stdout}\n${r.stderr}`);
  const maxRssKb = Number(/MAXRSS (\d+)/.exec(r.stderr)?.[1] ?? 0);
  return { wall, meta: JSON.parse(p.read('artifacts/embeddings/meta.json')), maxRssKb };
}

/** Bare onnxruntime: the same ONNX file, pre-made tensors, the same batch and threads. */
async function bareRun(p: Project, model: string, images: number): Promise<number> {
  const req = (await import('node:module')).createRequire(import.meta.resolve('@huggingface/transformers'));
  const ort = req('onnxruntime-node') as typeof import('onnxruntime-node');
  const file = path.join(p.path('models'), ...model.split('/'), 'onnx', 'vision_model.onnx');
  const session = await ort.InferenceSession.create(file, {
    intraOpNumThreads: THREADS > 0 ? THREADS : undefined,
    interOpNumThreads: 1,
  });
  const data = new Float32Array(BATCH * 3 * 224 * 224).map((_, i) => Math.sin(i) * 1.5);
  const input = new ort.Tensor('float32', data, [BATCH, 3, 224, 224]);
  await session.run({ pixel_values: input });
  const batches = Math.ceil(images / BATCH);
  const t0 = performance.now();
  for (let b = 0; b < batches; b++) await session.run({ pixel_values: input });
  const secs = (performance.now() - t0) / 1000;
  await session.release();
  return (batches * BATCH) / secs;
}

/** Add 1% new images to a project that ran `full`, rerun, and compare. */
async function increment(p: Project, model: string, images: number, full: Awaited<ReturnType<typeof runStage>>) {
  const extra = Math.max(1, Math.round(images * 0.01));
  await addImages(p, images, images + extra);
  const inc = await runStage(p, model);
  note(`  +1% (${extra} images): embedded`, `${inc.meta.computed}`);
  note(
    '  +1% stage time / full stage time (goal <= 2%)',
    `${((100 * inc.meta.seconds) / full.meta.seconds).toFixed(1)}%`,
  );
  note('  +1% command wall / full command wall', `${((100 * inc.wall) / full.wall).toFixed(1)}%`);
  note('  +1% stage phases (s)', JSON.stringify(inc.meta.phases));
}

console.log(`embed benchmark: ${IMAGES} images, batch ${BATCH}, ${THREADS} onnxruntime thread(s)\n`);
for (const model of MODELS) {
  const p = await project(IMAGES);
  try {
    const full = await runStage(p, model);
    const bare = await bareRun(p, model, IMAGES);
    const stageRate = full.meta.computed / full.meta.seconds;
    console.log(model);
    note('  bare session.run', `${bare.toFixed(1)} img/s`);
    note('  embed stage (embedding loop only)', `${full.meta.images_per_second.toFixed(1)} img/s`);
    note('  embed stage (whole stage: hash, load, write)', `${stageRate.toFixed(1)} img/s`);
    note('  overhead ratio, loop / bare (goal >= 0.9)', `${(full.meta.images_per_second / bare).toFixed(2)}x`);
    note('  overhead ratio, whole stage / bare', `${(stageRate / bare).toFixed(2)}x`);

    await increment(p, model, IMAGES, full);
    console.log();
  } finally {
    p.remove();
  }
}

if (RSS_IMAGES > 0) {
  const p = await project(RSS_IMAGES);
  try {
    console.log(`generated/tiny-clip, ${RSS_IMAGES} images`);
    const r = await runStage(p, 'generated/tiny-clip');
    note(`  peak RSS (goal < 1 GiB)`, `${(r.maxRssKb / 1024).toFixed(0)} MiB`);
    note('  embedded', `${r.meta.computed} in ${r.meta.seconds.toFixed(1)} s`);
    await increment(p, 'generated/tiny-clip', RSS_IMAGES, r);
  } finally {
    p.remove();
  }
}
