// The `model` and `embed` stages through the real CLI, offline (any connection beyond loopback throws in
// the children): shapes, determinism, batch = single, the per-image cache proved by counting model calls,
// increments, invalidation by dtype and by model files, bad images, bad models, and Ctrl-C midway.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeManifest } from '../stages/download/manifest.ts';
import { renderFace } from '../stages/download/synthetic-faces.ts';
import { writeClipFixture } from '../stages/embed/clip-fixture.ts';
import { readNpy } from '../stages/embed/npy.ts';
import { MODEL_EMBED_PIPELINE, Project } from './rig.ts';

interface Meta {
  count: number;
  dim: number;
  computed: number;
  cached: number;
  model_calls: number;
  source: string;
  note?: string;
  skipped: Array<{ id: string; error: string }>;
}

const meta = (p: Project) => JSON.parse(p.read('artifacts/embeddings/meta.json')) as Meta;
const matrix = (p: Project) => readNpy(p.path('artifacts/embeddings/embeddings.npy'));

function ok(r: { exitCode: number; stdout: string; stderr: string }): void {
  assert.equal(r.exitCode, 0, r.stdout + r.stderr);
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('embed stage on the generated faces and the generated model', () => {
  let p: Project;
  let first: Buffer;
  before(() => {
    p = Project.repoCopy().offline();
  });
  after(() => p.remove());

  test('embeds every face: a float32 matrix NumPy can load, a row index, and meta', async () => {
    ok(await p.cli('run', 'embed', 'split', '--set', 'data.count=40'));
    const m = matrix(p);
    assert.deepEqual(m.shape, [40, 512]);
    const norms = Array.from({ length: 40 }, (_, i) => Math.hypot(...m.data.subarray(i * 512, (i + 1) * 512)));
    for (const n of norms) assert.ok(Math.abs(n - 1) < 1e-5, `row normalised (${n})`);
    const ids = p.read('artifacts/embeddings/ids.csv').trim().split('\n');
    assert.equal(ids[0], 'row,id,label');
    assert.equal(ids.length, 41);
    assert.match(ids[1], /^0,00000,(open|closed)$/);
    const info = meta(p);
    assert.equal(info.computed, 40);
    assert.equal(info.source, 'generated');
    assert.match(info.note ?? '', /NOT CLIP/);
    assert.ok(p.exists('models/generated/tiny-clip/onnx/vision_model.onnx'));
    first = readFileSync(p.path('artifacts/embeddings/embeddings.npy'));
  });

  test('a rerun that changes only the batch size calls the model zero times, and split is not rerun', async () => {
    const r = await p.cli('run', 'embed', 'split', '--set', 'data.count=40', '--set', 'embed.batch=4');
    ok(r);
    const info = meta(p);
    assert.equal(info.model_calls, 0);
    assert.equal(info.cached, 40);
    assert.deepEqual(readFileSync(p.path('artifacts/embeddings/embeddings.npy')), first);
    assert.doesNotMatch(r.stdout, /▶ split/, 'same embeddings: split stays fresh');
  });

  test('adding images embeds only the new ones', async () => {
    ok(await p.cli('run', 'embed', '--set', 'data.count=44', '--set', 'embed.batch=4'));
    const info = meta(p);
    assert.equal(info.computed, 4);
    assert.equal(info.model_calls, 1);
    assert.equal(info.cached, 40);
    assert.deepEqual(matrix(p).data.subarray(0, 40 * 512), readNpy(writeTmp(first)).data);
  });

  test('changing embed.dtype recomputes every image, with close but different values', async () => {
    ok(await p.cli('run', 'embed', '--set', 'data.count=44', '--set', 'embed.dtype=q8'));
    const info = meta(p);
    assert.equal(info.computed, 44);
    const q8 = matrix(p).data.subarray(0, 40 * 512);
    const fp32 = readNpy(writeTmp(first)).data;
    assert.ok(maxDiff(q8, fp32) > 0, 'q8 differs');
    for (let i = 0; i < 40; i++) {
      let dot = 0;
      for (let j = 0; j < 512; j++) dot += q8[i * 512 + j] * fp32[i * 512 + j];
      assert.ok(dot > 0.99, `row ${i}: cosine ${dot}`);
    }
  });

  test('another project embeds the same faces to the same bytes; batch 1 equals batch 16', async () => {
    const q = Project.repoCopy().offline();
    try {
      ok(await q.cli('run', 'embed', '--set', 'data.count=40', '--set', 'embed.batch=1'));
      assert.equal(meta(q).model_calls, 40);
      assert.ok(maxDiff(matrix(q).data, readNpy(writeTmp(first)).data) < 1e-5);
      rmSync(q.path('artifacts/embed-cache'), { recursive: true });
      ok(await q.cli('run', 'embed', '--set', 'data.count=40'));
      assert.equal(meta(q).computed, 40);
      assert.deepEqual(readFileSync(q.path('artifacts/embeddings/embeddings.npy')), first);
    } finally {
      q.remove();
    }
  });
});

/** `data` as a temp .npy file (readNpy reads files), removed when the tests end. */
const tmpFiles: string[] = [];
after(() => {
  for (const f of tmpFiles) rmSync(f, { force: true });
});
function writeTmp(data: Buffer): string {
  const f = path.join(tmpdir(), `embed-test-${process.pid}-${tmpFiles.length}.npy`);
  writeFileSync(f, data);
  tmpFiles.push(f);
  return f;
}

/** A project whose faces are written by the test (no download stage), to plant bad images. */
async function handMade(count: number): Promise<Project> {
  const p = Project.repoCopy().offline();
  p.write('pipeline.ts', MODEL_EMBED_PIPELINE);
  mkdirSync(p.path('data/faces/images'), { recursive: true });
  const items = [];
  for (let i = 0; i < count; i++) {
    const id = String(i).padStart(5, '0');
    const { png, attributes } = await renderFace(3, i, 64);
    writeFileSync(p.path(`data/faces/images/${id}.png`), png, { flag: 'w' });
    items.push({
      id,
      path: `images/${id}.png`,
      bytes: png.length,
      md5: '',
      label: String(attributes.eye_state),
      attributes: {},
    });
  }
  writeManifest(p.path('data/faces/manifest.json'), {
    dataset: 'test',
    source: 'test',
    target: 'eye_state',
    excluded: {},
    provenance: {},
    items,
  });
  return p;
}

describe('embed stage: bad images and bad models', () => {
  let p: Project;
  before(async () => {
    p = await handMade(12);
    const png = readFileSync(p.path('data/faces/images/00003.png'));
    writeFileSync(p.path('data/faces/images/00003.png'), png.subarray(0, 40)); // truncated
    writeFileSync(p.path('data/faces/images/00007.png'), 'not an image at all');
  });
  after(() => p.remove());

  test('embed.on_error skip: the unreadable images are named, counted and left out', async () => {
    const r = await p.cli('run');
    ok(r);
    assert.match(r.stdout, /skipped data\/faces\/images\/00003\.png/);
    const info = meta(p);
    assert.equal(info.count, 10);
    assert.deepEqual(
      info.skipped.map((s) => s.id),
      ['00003', '00007'],
    );
    assert.deepEqual(matrix(p).shape, [10, 512]);
    assert.ok(!p.read('artifacts/embeddings/ids.csv').includes('00003'));
  });

  test('embed.on_error fail: the run fails and names the file', async () => {
    const r = await p.cli('run', '--set', 'embed.on_error=fail', '--set', 'embed.dtype=q8');
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stdout + r.stderr, /data\/faces\/images\/00003\.png \(image 00003\) cannot be read/);
    assert.match(r.stdout + r.stderr, /embed\.on_error: skip/);
  });

  test('a model folder with a missing file: the error names the folder and every file it needs', async () => {
    const r = await p.cli('run', '--set', 'embed.model=local/absent', '--set', 'embed.offline=true');
    assert.notEqual(r.exitCode, 0);
    const out = r.stdout + r.stderr;
    assert.match(out, /models\/local\/absent\//);
    assert.match(out, /config\.json, preprocessor_config\.json, onnx\/vision_model\.onnx/);
  });

  test('a model whose output is not image_embeds is refused by name', async () => {
    await writeClipFixture(p.path('models/local/wrong-output'), {
      preset: 'tiny',
      seed: 0,
      outputName: 'last_hidden_state',
    });
    const r = await p.cli('run', '--set', 'embed.model=local/wrong-output');
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stdout + r.stderr, /returned last_hidden_state, not image_embeds/);
  });

  test('new model files (same id) recompute every image', async () => {
    await writeClipFixture(p.path('models/local/mine'), { preset: 'tiny', seed: 1 });
    ok(await p.cli('run', '--set', 'embed.model=local/mine'));
    assert.equal(meta(p).computed, 10);
    assert.equal(meta(p).source, 'local');
    const before = matrix(p).data;
    await writeClipFixture(p.path('models/local/mine'), { preset: 'tiny', seed: 2 });
    ok(await p.cli('run', '--set', 'embed.model=local/mine'));
    assert.equal(meta(p).computed, 10);
    assert.ok(maxDiff(before, matrix(p).data) > 1e-3);
  });
});

describe('model stage: a model from a hub in the Hugging Face layout, on loopback', () => {
  let server: Server;
  let hub: string;
  const requests: string[] = [];
  let files: string;
  before(async () => {
    files = mkdtempSync(path.join(tmpdir(), 'hub-'));
    await writeClipFixture(path.join(files, 'org/clip-test'), { preset: 'tiny', seed: 4 });
    server = createServer((req, res) => {
      requests.push(req.url ?? '');
      const m = /^\/org\/clip-test\/resolve\/main\/(.+)$/.exec(req.url ?? '');
      const file = m && path.join(files, 'org/clip-test', decodeURIComponent(m[1]));
      if (!file || !existsSync(file)) {
        res.writeHead(404);
        res.end();
        return;
      }
      const body = readFileSync(file);
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    hub = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.close();
    rmSync(files, { recursive: true, force: true });
  });

  test('downloads the files the dtype needs into models/<id>/, then embeds with them', async () => {
    const p = await handMade(6);
    try {
      const r = await p.cli('run', '--set', 'embed.model=org/clip-test', '--set', `embed.hub=${hub}`);
      ok(r);
      assert.deepEqual(requests.sort(), [
        '/org/clip-test/resolve/main/config.json',
        '/org/clip-test/resolve/main/onnx/vision_model.onnx',
        '/org/clip-test/resolve/main/preprocessor_config.json',
      ]);
      assert.deepEqual(
        readFileSync(p.path('models/org/clip-test/onnx/vision_model.onnx')),
        readFileSync(path.join(files, 'org/clip-test/onnx/vision_model.onnx')),
      );
      assert.equal(meta(p).source, 'hub');
      assert.equal(meta(p).count, 6);
      // An id the hub does not have: the error says what is missing and how to fill the folder.
      const bad = await p.cli('run', '--set', 'embed.model=org/absent', '--set', `embed.hub=${hub}`);
      assert.notEqual(bad.exitCode, 0);
      assert.match(bad.stdout + bad.stderr, /404/);
      assert.match(bad.stdout + bad.stderr, /huggingface-cli download org\/absent --local-dir models\/org\/absent/);
    } finally {
      p.remove();
    }
  });
});

describe('embed stage: Ctrl-C midway', () => {
  test('the images finished before the interrupt stay cached; the rerun embeds only the rest', async () => {
    const p = Project.repoCopy().offline();
    try {
      ok(await p.cli('run', 'download', '--set', 'data.count=300'));
      const child = p.spawn(['run', 'embed', '--json', '--set', 'data.count=300', '--set', 'embed.batch=8']);
      let seen = 0;
      child.stdout?.on('data', (chunk: Buffer) => {
        for (const line of chunk.toString().split('\n')) {
          const m =
            /"stage":"embed","progress":\{"done":(\d+),"total":\d+,"unit":"images","message":"[\d.]+ img\/s"/.exec(
              line,
            );
          if (m) seen = Math.max(seen, Number(m[1]));
          if (seen >= 40 && child.exitCode === null && !child.killed) child.kill('SIGINT');
        }
      });
      const r = await child;
      assert.notEqual(r.exitCode, 0, 'interrupted');
      assert.ok(seen >= 40, `saw progress up to ${seen}`);
      ok(await p.cli('run', 'embed', '--set', 'data.count=300'));
      const info = meta(p);
      assert.equal(info.count, 300);
      assert.ok(info.cached >= 40, `cached ${info.cached}`);
      assert.equal(info.computed + info.cached, 300);
    } finally {
      p.remove();
    }
  });
});
