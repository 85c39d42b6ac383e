// The `download` stage through the real CLI, in a copy of this repository's pipeline: the synthetic
// default, and a mini-FFHQ served by a loopback HTTP server in the official layout (metadata JSON,
// PNGs, the FFHQ-Aging CSV, Face-API JSONs), with faults injected. Nothing reaches the internet.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { renderFace } from '../stages/download/synthetic-faces.ts';
import { Project } from './rig.ts';

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

interface Manifest {
  target: string;
  classes: string[];
  excluded: Record<string, number>;
  items: Array<{ id: string; path: string; md5: string; label: string }>;
}

describe('download stage: synthetic (the offline default)', () => {
  let p: Project;
  before(() => {
    p = Project.repoCopy();
  });
  after(() => p.remove());

  test('renders the faces with labels, then only the new ones when the count rises', async () => {
    const r = await p.cli('run', 'download', '--set', 'data.count=40');
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /synthetic faces: 40 \(40 rendered, 0 kept\), target 'eye_state'/);
    const m = JSON.parse(p.read('data/faces/manifest.json')) as Manifest;
    assert.equal(m.items.length, 40);
    assert.deepEqual(m.classes, ['closed', 'open']);
    for (const item of m.items.slice(0, 5))
      assert.equal(md5(readFileSync(p.path(`data/faces/${item.path}`))), item.md5);
    // PNG files, really.
    assert.equal(
      readFileSync(p.path(`data/faces/${m.items[0].path}`))
        .subarray(1, 4)
        .toString(),
      'PNG',
    );

    const more = await p.cli('run', 'download', '--set', 'data.count=50');
    assert.match(more.stdout, /synthetic faces: 50 \(10 rendered, 40 kept\)/);
    const m2 = JSON.parse(p.read('data/faces/manifest.json')) as Manifest;
    assert.deepEqual(m2.items.slice(0, 40), m.items, 'earlier faces unchanged');
    assert.match((await p.cli('status', 'download', '--set', 'data.count=50')).stdout, /download\s+fresh/);
  });

  test('the same seed draws the same faces anywhere; another seed, others', async () => {
    const a = await renderFace(0, 7);
    const b = await renderFace(0, 7);
    const c = await renderFace(1, 7);
    assert.deepEqual(a.png, b.png);
    assert.notDeepEqual(a.png, c.png);
    const m = JSON.parse(p.read('data/faces/manifest.json')) as Manifest;
    assert.equal(m.items[7].md5, md5(a.png));
  });

  test('an unknown target is an error naming the attributes there are', async () => {
    const r = await p.cli('run', 'download', '--set', 'labels.target=age');
    assert.equal(r.exitCode, 1);
    assert.match(
      r.stdout,
      /labels\.target 'age' is not an attribute of the synthetic faces: use one of eye_state, expression/,
    );
  });
});

describe('download stage: FFHQ from a loopback mirror', () => {
  const N = 12;
  const files = new Map<string, Buffer>();
  const hits = new Map<string, number>();
  let quotaFor: string | undefined;
  let truncateMetadata = false;
  let imageDelayMs = 0;
  let server: Server;
  let base = '';
  let p: Project;

  before(async () => {
    // A mini-FFHQ in the official layout.
    const meta: Record<string, unknown> = {};
    const csv = [
      'image_number,age_group,age_group_confidence,gender,gender_confidence,head_pitch,head_roll,head_yaw,left_eye_occluded,right_eye_occluded,glasses',
    ];
    for (let i = 0; i < N; i++) {
      const id = String(i).padStart(5, '0');
      const { png } = await renderFace(5, i);
      const rel = `thumbnails128x128/00000/${id}.png`;
      files.set(`/${rel}`, png);
      const block = (path: string, b: Buffer) => ({
        file_url: `https://drive.invalid/${id}`,
        file_path: path,
        file_size: b.length,
        file_md5: md5(b),
      });
      meta[String(i)] = {
        category: 'training',
        metadata: { photo_url: 'https://flickr.invalid', author: 'x', license: 'CC' },
        image: block(`images1024x1024/00000/${id}.png`, png),
        thumbnail: block(rel, png),
        in_the_wild: block(`in-the-wild-images/00000/${id}.png`, png),
      };
      // Row 3 is malformed (no age group); row 4 has a low confidence.
      const age = i === 3 ? '' : ['0-2', '20-29', '50-69'][i % 3];
      csv.push(`${i},${age},${i === 4 ? 0.2 : 0.9},${i % 2 ? 'male' : 'female'},0.99,1.5,-2.0,10.0,0.1,0.05,None`);
      // Face-API: image 2 has no face.
      const face =
        i === 2
          ? []
          : [
              {
                faceAttributes: {
                  gender: i % 2 ? 'male' : 'female',
                  age: 20 + i,
                  smile: 0.9,
                  glasses: 'NoGlasses',
                  headPose: { pitch: 0, roll: 0, yaw: 1 },
                  emotion: { neutral: 0.9, happiness: 0.1 },
                },
              },
            ];
      files.set(`/labels/json/${id}.json`, Buffer.from(JSON.stringify(face)));
    }
    files.set('/ffhq-dataset-v2.json', Buffer.from(JSON.stringify(meta)));
    files.set('/labels/ffhq_aging_labels.csv', Buffer.from(`${csv.join('\n')}\n`));

    server = createServer((req, res) => {
      const url = req.url as string;
      hits.set(url, (hits.get(url) ?? 0) + 1);
      if (url === quotaFor) {
        res
          .writeHead(200, { 'content-type': 'text/html' })
          .end('<html><body>Google Drive - Quota exceeded</body></html>');
        return;
      }
      let body = files.get(url);
      if (!body) return void res.writeHead(404).end();
      if (url === '/ffhq-dataset-v2.json' && truncateMetadata) body = body.subarray(0, body.length / 2);
      const send = () => res.writeHead(200, { 'content-length': body.length }).end(body);
      if (url.startsWith('/thumbnails') && imageDelayMs) setTimeout(send, imageDelayMs);
      else send();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    p = Project.repoCopy();
  });
  after(async () => {
    p.remove();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const ffhq = (...extra: string[]) => [
    'run',
    'download',
    '--set',
    'data.source=ffhq',
    '--set',
    `data.mirror=${base}`,
    '--set',
    'labels.source=ffhq-aging',
    '--set',
    'labels.target=age_group',
    '--set',
    `labels.url=${base}/labels/ffhq_aging_labels.csv`,
    '--set',
    'labels.min_confidence=0.5',
    ...extra,
  ];
  const imageHits = () => [...hits].filter(([u]) => u.startsWith('/thumbnails')).reduce((n, [, c]) => n + c, 0);

  test('a truncated metadata JSON: a clear error, and the next run fetches it again', async () => {
    truncateMetadata = true;
    const r = await p.cli(...ffhq('--set', 'data.limit=8'));
    assert.equal(r.exitCode, 1, r.stdout);
    assert.match(
      r.stdout,
      /the FFHQ metadata from http:\/\/127\.0\.0\.1:\d+\/ffhq-dataset-v2\.json is truncated or malformed .*rerun to fetch it again/,
    );
    truncateMetadata = false;
  });

  test('Ctrl-C during the download: verified files are kept, the next run fetches only the rest', async () => {
    imageDelayMs = 150;
    const run = p.spawn(ffhq('--set', 'data.limit=8', '--set', 'data.jobs=1'));
    const dir = p.path('data/faces/thumbnails128x128/00000');
    for (let i = 0; i < 200; i++) {
      if (
        p.exists('data/faces/thumbnails128x128/00000') &&
        readdirSync(dir).filter((f) => f.endsWith('.png')).length >= 3
      )
        break;
      await new Promise((r) => setTimeout(r, 50));
    }
    run.kill('SIGINT');
    const stopped = await run;
    assert.equal(stopped.exitCode, 130, String(stopped.stdout));
    const kept = readdirSync(dir).filter((f) => f.endsWith('.png')).length;
    assert.ok(kept >= 3 && kept < 8, `kept ${kept} verified images`);
    imageDelayMs = 0;
    const before = imageHits();
    const r = await p.cli(...ffhq('--set', 'data.limit=8', '--set', 'data.jobs=1'));
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    // The one in flight when stopped may be fetched again; none of the kept ones is.
    assert.ok(imageHits() - before <= 8 - kept + 1, `refetched ${imageHits() - before}`);
    rmSync(p.path('data/faces/thumbnails128x128'), { recursive: true });
  });

  test('a quota page instead of an image: the run fails saying so, keeping what it verified', async () => {
    quotaFor = '/thumbnails128x128/00000/00005.png';
    const r = await p.cli(...ffhq('--set', 'data.limit=8'));
    assert.equal(r.exitCode, 1, r.stdout);
    assert.match(r.stdout, /1 of 8 files could not be downloaded .*rerun to resume/);
    assert.match(r.stdout, /got an HTML page instead of the file \(Google Drive's quota/);
    assert.equal(readdirSync(p.path('data/faces/thumbnails128x128/00000')).filter((f) => f.endsWith('.png')).length, 7);
    quotaFor = undefined;
  });

  test('the rerun fetches only what is missing, verifies it, and joins the labels', async () => {
    const before = imageHits();
    const r = await p.cli(...ffhq('--set', 'data.limit=8'));
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.equal(imageHits() - before, 1, 'only the image that failed');
    const m = JSON.parse(p.read('data/faces/manifest.json')) as Manifest;
    // 8 images; row 3 malformed, row 4 below min_confidence.
    assert.deepEqual(
      m.items.map((i) => i.id),
      ['00000', '00001', '00002', '00005', '00006', '00007'],
    );
    assert.equal(m.excluded.malformed, 1);
    assert.equal(m.excluded.lowConfidence, 1);
    assert.deepEqual(m.classes, ['0-2', '20-29', '50-69']);
    assert.equal(m.items[1].label, '20-29');
    for (const item of m.items) assert.equal(md5(readFileSync(p.path(`data/faces/${item.path}`))), item.md5);
  });

  test('raising data.limit downloads only the new files', async () => {
    const before = imageHits();
    const r = await p.cli(...ffhq('--set', `data.limit=${N}`));
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.equal(imageHits() - before, N - 8);
    assert.match(r.stdout, /12 images \(4 fetched, .*; 8 already here\)/);
  });

  test('Face-API labels: a file with no face is excluded and counted', async () => {
    const r = await p.cli(
      ...ffhq(
        '--set',
        `data.limit=${N}`,
        '--set',
        'labels.source=ffhq-features',
        '--set',
        'labels.target=gender',
        '--set',
        `labels.url=${base}/labels`,
      ),
    );
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    const m = JSON.parse(p.read('data/faces/manifest.json')) as Manifest;
    assert.equal(m.items.length, N - 1);
    assert.equal(m.excluded.noFace, 1);
    assert.deepEqual(m.classes, ['female', 'male']);
  });

  test('a missing target column fails naming it', async () => {
    const r = await p.cli(...ffhq('--set', `data.limit=${N}`, '--set', 'labels.target=hair_colour'));
    assert.equal(r.exitCode, 1);
    assert.match(r.stdout, /hair_colour/);
  });
});
