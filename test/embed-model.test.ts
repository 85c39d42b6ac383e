// The generated CLIP-format model (stages/embed/clip-fixture.ts) loads through transformers.js exactly as
// Xenova/clip-vit-base-patch32 does: local folder, AutoProcessor + CLIPVisionModelWithProjection, fp32 and
// q8 files picked by dtype. Offline: the images are drawn with sharp here.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AutoProcessor, CLIPVisionModelWithProjection, env, RawImage, type Tensor } from '@huggingface/transformers';
import sharp from 'sharp';
import { FIXTURE_FILES, type FixtureOptions, writeClipFixture } from '../stages/embed/clip-fixture.ts';

const tmp = mkdtempSync(path.join(tmpdir(), 'embed-model-'));
const models = path.join(tmp, 'models');

env.localModelPath = models;
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.cacheDir = path.join(tmp, 'cache');

/** Writes the tiny fixture as model `local/<name>`. */
async function fixture(name: string, opts: Partial<FixtureOptions> = {}) {
  const dir = path.join(models, 'local', name);
  const written = await writeClipFixture(dir, { preset: 'tiny', seed: 1, ...opts });
  return { dir, id: `local/${name}`, ...written };
}

/** A drawn circle on a plain background; not square, so resize and center crop both do something. */
async function drawing(i: number): Promise<RawImage> {
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="160" height="120">` +
    `<rect width="160" height="120" fill="${['#dfe7ef', '#f4e1d2', '#203040'][i % 3]}"/>` +
    `<circle cx="${60 + 15 * i}" cy="60" r="${20 + 8 * i}" fill="${['#c68642', '#1c1c1c', '#fff3c4'][i % 3]}"/>` +
    `<rect x="${20 + 10 * i}" y="20" width="12" height="8" fill="#fff"/></svg>`;
  const png = await sharp(Buffer.from(svg)).png().toBuffer();
  return RawImage.fromBlob(new Blob([new Uint8Array(png)]));
}

async function embed(id: string, images: RawImage[], dtype: 'fp32' | 'q8' = 'fp32') {
  const processor = await AutoProcessor.from_pretrained(id);
  const model = await CLIPVisionModelWithProjection.from_pretrained(id, { dtype });
  try {
    const inputs = await processor(images);
    return (await model(inputs)) as Record<string, Tensor>;
  } finally {
    await model.dispose();
  }
}

const rows = (t: Tensor) => {
  const [n, d] = t.dims;
  const data = t.data as Float32Array;
  return Array.from({ length: n }, (_, i) => data.subarray(i * d, (i + 1) * d));
};

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('tiny CLIP fixture through transformers.js', () => {
  let images: RawImage[];
  let base: Awaited<ReturnType<typeof fixture>>;
  let fp32: Record<string, Tensor>;

  before(async () => {
    images = await Promise.all([0, 1, 2].map(drawing));
    base = await fixture('tiny-clip');
    fp32 = await embed(base.id, images);
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('writes the CLIP folder layout, small, with an honest config', () => {
    assert.deepEqual(base.files, FIXTURE_FILES);
    assert.equal(base.embedDim, 512);
    for (const f of FIXTURE_FILES) assert.ok(statSync(path.join(base.dir, f)).size < 2_000_000, `${f} is under 2 MB`);
    const config = JSON.parse(readFileSync(path.join(base.dir, 'config.json'), 'utf8'));
    assert.equal(config.model_type, 'clip_vision_model');
    assert.deepEqual(config.architectures, ['CLIPVisionModelWithProjection']);
    assert.match(config._generated, /random weights/);
    const pre = JSON.parse(readFileSync(path.join(base.dir, 'preprocessor_config.json'), 'utf8'));
    assert.equal(pre.image_processor_type, 'CLIPImageProcessor');
    assert.deepEqual(pre.size, { shortest_edge: 224 });
  });

  test('image_embeds is [n, 512] and finite', () => {
    const e = fp32.image_embeds;
    assert.ok(e, `outputs: ${Object.keys(fp32)}`);
    assert.deepEqual(e.dims, [3, 512]);
    assert.equal(e.type, 'float32');
    assert.ok((e.data as Float32Array).every(Number.isFinite));
    // Different images give different embeddings.
    const [a, b] = rows(e);
    assert.ok(cosine(a, b) < 0.999);
  });

  test('a batch gives the same embeddings as one image at a time', async () => {
    const batch = rows(fp32.image_embeds);
    for (let i = 0; i < images.length; i++) {
      const [single] = rows((await embed(base.id, [images[i]])).image_embeds);
      assert.ok(maxAbsDiff(single, batch[i]) < 1e-5, `image ${i}: ${maxAbsDiff(single, batch[i])}`);
    }
  });

  test('deterministic: the same options write the same bytes; another seed, other weights', async () => {
    const again = await fixture('tiny-clip-again');
    for (const f of FIXTURE_FILES) {
      assert.ok(readFileSync(path.join(base.dir, f)).equals(readFileSync(path.join(again.dir, f))), `${f} differs`);
    }
    const other = await fixture('tiny-clip-seed2', { seed: 2 });
    const [a] = rows(fp32.image_embeds);
    const [b] = rows((await embed(other.id, [images[0]])).image_embeds);
    assert.ok(maxAbsDiff(a, b) > 1e-3);
  });

  test('q8 loads with dtype q8 (vision_model_quantized.onnx) and stays close to fp32', async () => {
    const q8 = await embed(base.id, images, 'q8');
    assert.deepEqual(q8.image_embeds.dims, [3, 512]);
    const f = rows(fp32.image_embeds);
    rows(q8.image_embeds).forEach((q, i) => {
      const c = cosine(q, f[i]);
      assert.ok(c > 0.99, `image ${i}: cosine ${c}`);
      assert.ok(maxAbsDiff(q, f[i]) > 0, 'q8 should not be bit-identical to fp32');
    });
  });

  test('a wrongly named output leaves image_embeds absent', async () => {
    const wrong = await fixture('tiny-clip-wrong', { outputName: 'last_hidden_state' });
    const out = await embed(wrong.id, [images[0]]);
    assert.equal(out.image_embeds, undefined);
    assert.deepEqual(Object.keys(out), ['last_hidden_state']);
  });
});
