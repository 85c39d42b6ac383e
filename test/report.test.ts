// The report renderers on fixtures in the shapes the train / evaluate / embed / split / download stages
// write: charts are real SVG (parsed by sharp's librsvg) with the expected labels, byte-identical on a
// second render; the run report carries the headline numbers, the NOT CLIP warning and no external
// resources; the sweep report groups seeds, ranks and computes mean ± std.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import {
  confusionMatrixSvg,
  learningCurvesSvg,
  perClassF1Svg,
  stableIds,
  sweepChartSvg,
} from '../stages/report/charts.ts';
import { type ReportInputs, readReportInputs } from '../stages/report/inputs.ts';
import { type RenderedReport, renderRunReport, writeReportFiles } from '../stages/report/report-doc.ts';
import { groupSweep, meanStd, type SweepRow, writeSweepReport } from '../stages/report/sweep-report.ts';

const NOTE = 'a tiny random-features model in CLIP format, generated with seeded weights: NOT CLIP';

function history(epochs = 44) {
  return {
    backend: 'wasm',
    best_epoch: 34,
    stopped_epoch: epochs,
    samples_per_second: 4800,
    seconds: 21.3,
    history: Array.from({ length: epochs }, (_, i) => ({
      epoch: i + 1,
      train_loss: 0.69 - i * 0.008,
      train_acc: 0.55 + i * 0.006,
      val_loss: 0.68 - i * 0.004,
      val_acc: 0.58 + i * 0.0035,
      lr: 0.001,
      seconds: 0.5,
    })),
  };
}

const metrics = () => ({
  backend: 'wasm',
  classes: ['closed', 'open'],
  val: { accuracy: 0.7259, macro_f1: 0.72, loss: 0.55, n: 200 },
  test: { accuracy: 0.7303, macro_f1: 0.73, loss: 0.54, n: 200 },
  generalisation_gap: -0.0044,
  per_class: [
    { class: 'closed', precision: 0.7212, recall: 0.75, f1: 0.7353, support: 100 },
    { class: 'open', precision: 0.7396, recall: 0.71, f1: 0.7245, support: 100 },
  ],
  confusion: {
    labels: ['closed', 'open'],
    matrix: [
      [75, 25],
      [29, 71],
    ],
  },
});

const embedMeta = (note?: string) => ({
  model: note ? 'generated/tiny-clip' : 'Xenova/clip-vit-base-patch32',
  source: note ? 'generated' : 'hub',
  ...(note ? { note } : {}),
  dtype: 'fp32',
  dim: 64,
  count: 2000,
  normalize: true,
  computed: 1500,
  model_calls: 94,
  cached: 500,
  skipped: [],
  cache_key: 'c0ffee',
  versions: { node: '20.19.0', onnxruntime: '1.22.0', transformers: '4.3.2' },
  seconds: 41.2,
  images_per_second: 48.5,
});

const splitSummary = () => ({
  ratios: [0.8, 0.1, 0.1],
  seed: 42,
  parts: {
    train: { total: 1600, classes: { closed: 800, open: 800 } },
    val: { total: 200, classes: { closed: 100, open: 100 } },
    test: { total: 200, classes: { closed: 100, open: 100 } },
  },
});

const manifest = () => ({
  dataset: 'synthetic-faces',
  source: 'synthetic',
  target: 'eye_state',
  classes: ['closed', 'open'],
  excluded: { noFace: 0 },
  provenance: { generator: 'stages/download/synthetic-faces.ts', seed: 0, note: 'generated faces, not FFHQ' },
  items: Array.from({ length: 6 }, (_, i) => ({
    id: String(i).padStart(5, '0'),
    path: `images/${i}.png`,
    bytes: 10,
    md5: 'x',
    label: i < 4 ? 'open' : 'closed',
    attributes: {},
  })),
});

const LOCK = `# Written by \`pipeline run\`
schema: 1
stages:
  embed:
    code: { stages/embed-clip.ts: aaaa }
    deps: {}
    engine: 1
    fingerprint: 0123456789abcdef0123
    outs:
      artifacts/embeddings: { hash: fedcba9876543210fedc, size: 10, files: 3 }
    params: {}
`;

const CONFIG = { train: { hidden: [384, 256, 128, 64, 32], activation: 'relu', lr: 0.001 }, split: { seed: 42 } };

/** Write the five dep files (and optionally a lock) into a fresh project folder. */
function writeProject(dir: string, opts: { note?: string; lock?: boolean } = {}) {
  const put = (rel: string, value: unknown) => {
    const file = path.join(dir, rel);
    rmSync(file, { force: true });
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
    return file;
  };
  const files = {
    metrics: put('artifacts/metrics.json', metrics()),
    trainDir: path.dirname(put('artifacts/train/history.json', history())),
    embedMeta: put('artifacts/embeddings/meta.json', embedMeta(opts.note)),
    split: put('artifacts/split/summary.json', splitSummary()),
    manifest: put('data/faces/manifest.json', manifest()),
  };
  if (opts.lock) put('pipeline.lock', LOCK);
  return files;
}

/** A real parse: librsvg (through sharp) rejects malformed XML. */
async function assertSvg(svg: string) {
  assert.match(svg, /^<svg[\s>]/);
  assert.match(svg, /<\/svg>\s*$/);
  const meta = await sharp(Buffer.from(svg)).metadata();
  assert.equal(meta.format, 'svg');
  assert.ok((meta.width ?? 0) > 50 && (meta.height ?? 0) > 50, `${meta.width}x${meta.height}`);
}

const EXTERNAL = /(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\/|url\(\s*["']?(?:https?:)?\/\/|<script|<link\b|@import/i;

describe('charts', () => {
  test('learning curves: both panels, both splits, the best epoch; same bytes twice', async () => {
    const svg = await learningCurvesSvg(history());
    await assertSvg(svg);
    for (const label of ['Loss', 'Accuracy', 'train', 'val', 'epoch', 'best epoch 34'])
      assert.ok(svg.includes(label), label);
    assert.equal(await learningCurvesSvg(history()), svg);
  });

  test('confusion matrix: every count as text, the class names on both axes', async () => {
    const svg = await confusionMatrixSvg(metrics().confusion);
    await assertSvg(svg);
    for (const n of ['75', '25', '29', '71']) assert.match(svg, new RegExp(`>${n}</text>`));
    assert.ok(svg.includes('predicted') && svg.includes('true class'));
    assert.equal((svg.match(/>closed</g) ?? []).length, 2);
    assert.equal(await confusionMatrixSvg(metrics().confusion), svg);
  });

  test('per-class F1: a bar per class, values printed, macro-F1 named', async () => {
    const svg = await perClassF1Svg(metrics().per_class);
    await assertSvg(svg);
    for (const t of ['0.735', '0.725', 'macro-F1 0.730', 'closed', 'open']) assert.ok(svg.includes(t), t);
  });

  test('sweep chart: ranked labels, mean ± std where repeated', async () => {
    const bars = [
      { label: 'lr=0.002', mean: 0.73, std: 0.004, n: 3 },
      { label: 'lr=0.001', mean: 0.72, n: 1 },
    ];
    const svg = await sweepChartSvg(bars, 'test_accuracy');
    await assertSvg(svg);
    assert.ok(svg.includes('1. lr=0.002') && svg.includes('2. lr=0.001'));
    assert.ok(svg.includes('73.00% ± 0.40 (n=3)'), 'mean ± std label');
    assert.ok(svg.includes('72.00%<'), 'single run: no ±');
    assert.equal(await sweepChartSvg(bars, 'test_accuracy'), svg);
  });

  test('stableIds renames ids and their references, in order of appearance', () => {
    const svg = '<svg><clipPath id="clip7"/><g clip-path="url(#clip7)"/><use href="#clip7"/><x id="g2"/></svg>';
    assert.equal(
      stableIds(svg, 'c'),
      '<svg><clipPath id="c-1"/><g clip-path="url(#c-1)"/><use href="#c-1"/><x id="c-2"/></svg>',
    );
  });
});

describe('run report', () => {
  let dir: string;
  let withNote: RenderedReport;
  let inputs: ReportInputs;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'report-test-'));
    inputs = readReportInputs(writeProject(dir, { note: NOTE, lock: true }), dir);
    withNote = await renderRunReport(inputs, CONFIG);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('reads the five records and the lock', () => {
    assert.equal(inputs.dataset.count, 6);
    assert.deepEqual(inputs.dataset.classCounts, { closed: 2, open: 4 });
    assert.equal(inputs.history.history.length, 44);
    assert.equal(inputs.lock?.embed.fingerprint, '0123456789abcdef0123');
  });

  test('a missing record names the stage that writes it', () => {
    const files = writeProject(path.join(dir, 'missing'));
    rmSync(files.metrics);
    assert.throws(() => readReportInputs(files, dir), /metrics\.json: missing; .*'evaluate' stage/);
  });

  test('markdown: headline numbers, charts as files, config as YAML, hashes, timings', () => {
    const md = withNote.markdown;
    for (const t of [
      '**73.03%**',
      '72.59%',
      '−0.44 pp',
      '0.730 / 0.720',
      '34 / 44',
      '4,800 samples/s',
      '`wasm`',
      '![Learning curves](learning-curves.svg)',
      '![Confusion matrix (test)](confusion-matrix.svg)',
      '![F1 per class (test)](per-class-f1.svg)',
      '```yaml\ntrain:\n  hidden: [384, 256, 128, 64, 32]',
      '| embed | `0123456789ab` | 1 | `artifacts/embeddings` fedcba987654 |',
      'as of when this report ran',
      '| embed | 41.2 s |',
      '| train | 21.3 s | 44 epochs',
      'closed (2), open (4)',
      '| train | 1,600 | 800 | 800 |',
    ])
      assert.ok(md.includes(t), `missing ${JSON.stringify(t)}`);
  });

  test('the generated model is flagged NOT CLIP, with the way to real CLIP; real CLIP is not', async () => {
    assert.match(withNote.markdown, /> \[!WARNING\]\n> \*\*These embeddings come from a generated model .*NOT CLIP/);
    assert.ok(withNote.markdown.includes('embed.model: Xenova/clip-vit-base-patch32'));
    assert.ok(withNote.html.includes('NOT CLIP'));
    const real = await renderRunReport({ ...inputs, embed: embedMeta() }, CONFIG);
    assert.ok(!real.markdown.includes('NOT CLIP'));
    assert.ok(!real.html.includes('NOT CLIP'));
  });

  test('html: self-contained, charts inline, ids unique across charts', () => {
    const html = withNote.html;
    assert.match(html, /^<!doctype html>/);
    assert.doesNotMatch(html, EXTERNAL);
    assert.equal((html.match(/<svg[\s>]/g) ?? []).length, 3);
    const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
    assert.equal(new Set(ids).size, ids.length, 'duplicate ids');
    assert.ok(html.includes('<td class="num"><strong>73.03%</strong> (n = 200)</td>'));
  });

  test('no lock: says so; same inputs give the same bytes', async () => {
    const again = await renderRunReport({ ...inputs, lock: undefined }, CONFIG);
    assert.ok(again.markdown.includes('No `pipeline.lock` yet'));
    const twice = await renderRunReport(inputs, CONFIG);
    assert.equal(twice.markdown, withNote.markdown);
    assert.equal(twice.html, withNote.html);
  });

  test('writes report.md, report.html and the charts the markdown links to', () => {
    const out = path.join(dir, 'reports/latest');
    const files = writeReportFiles(out, withNote);
    assert.deepEqual(files.sort(), [
      'confusion-matrix.svg',
      'learning-curves.svg',
      'per-class-f1.svg',
      'report.html',
      'report.md',
    ]);
    const md = readFileSync(path.join(out, 'report.md'), 'utf8');
    for (const m of md.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)) assert.ok(existsSync(path.join(out, m[1])), m[1]);
  });
});

describe('sweep report', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sweep-test-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const run = (experiment: string, params: Record<string, unknown>, acc: number, loss = 0.5): SweepRow => ({
    experiment,
    params,
    metrics: { test_accuracy: acc, test_loss: loss },
  });
  const rows: SweepRow[] = [
    run('a1', { 'train.lr': 0.001, 'train.seed': 1 }, 0.7, 0.6),
    run('a2', { 'train.lr': 0.001, 'train.seed': 2 }, 0.72, 0.58),
    run('a3', { 'train.lr': 0.001, 'train.seed': 3 }, 0.74, 0.56),
    run('b1', { 'train.lr': 0.002, 'train.seed': 1 }, 0.73, 0.5),
    { ...run('c', { train: { lr: 0.01 } }, 0.6, 0.9), seed: 7 },
  ];

  test('mean and sample standard deviation', () => {
    const s = meanStd([0.7, 0.72, 0.74]);
    assert.ok(Math.abs(s.mean - 0.72) < 1e-12);
    assert.ok(Math.abs((s.std ?? 0) - 0.02) < 1e-12);
    assert.deepEqual(meanStd([0.5]), { mean: 0.5, n: 1 });
  });

  test('groups by params without the seed, ranks by the metric', () => {
    const groups = groupSweep(rows);
    assert.deepEqual(
      groups.map((g) => g.label),
      ['lr=0.002', 'lr=0.001', 'lr=0.01'],
    );
    assert.deepEqual(groups[1].experiments, ['a1', 'a2', 'a3']);
    assert.deepEqual(groups[1].seeds, [1, 2, 3]);
    assert.deepEqual(groups[2].seeds, [7]);
    assert.equal(groups[1].stats.test_accuracy.n, 3);
    // A loss ranks lowest first; another seed key splits what it no longer ignores.
    assert.deepEqual(
      groupSweep(rows, { metric: 'test_loss' }).map((g) => g.label),
      ['lr=0.002', 'lr=0.001', 'lr=0.01'],
    );
    assert.equal(groupSweep(rows, { seedKey: 'data.seed' }).length, 5);
  });

  test('writes md, html and svg: ranked table with mean ± std, the best configuration', async () => {
    const { files, groups } = await writeSweepReport(dir, 'lr-sweep', rows);
    assert.deepEqual(
      files.map((f) => path.basename(f)),
      ['lr-sweep.md', 'lr-sweep.html', 'lr-sweep.svg'],
    );
    assert.equal(groups.length, 3);
    const md = readFileSync(path.join(dir, 'lr-sweep.md'), 'utf8');
    assert.ok(md.includes('**Best configuration: `lr=0.002`**'));
    assert.ok(md.includes('| 2 | `lr=0.001` | 3 | 72.00% ± 2.00 pp |'), md);
    assert.ok(md.includes('| 1 | `lr=0.002` | 1 | 73.00% |'));
    assert.ok(md.includes('within one standard deviation'));
    assert.ok(md.includes('![test_accuracy by configuration](lr-sweep.svg)'));
    const html = readFileSync(path.join(dir, 'lr-sweep.html'), 'utf8');
    assert.doesNotMatch(html, EXTERNAL);
    assert.ok(html.includes('<svg'));
    await assertSvg(readFileSync(path.join(dir, 'lr-sweep.svg'), 'utf8'));
    const again = await writeSweepReport(path.join(dir, 'again'), 'lr-sweep', rows);
    assert.equal(readFileSync(again.files[1], 'utf8'), html);
  });
});
