// The run report: what the pipeline's upstream stages recorded, as report.md (charts as .svg files
// beside it) and a self-contained report.html. Sections, top to bottom:
//
//   title, one-line summary, warnings (generated model / generated faces)
//   headline metrics -> training (curves) -> evaluation (confusion, per class)
//   -> dataset & split -> model -> timings -> configuration (YAML) -> hashes (pipeline.lock)

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as yaml from 'js-yaml';
import { confusionMatrixSvg, learningCurvesSvg, perClassF1Svg } from './charts.ts';
import { type Block, type Chart, toHtml, toMarkdown } from './document.ts';
import { DASH, duration, fixed, grouped, pct, plain, pp, shortHash } from './format.ts';
import type { ReportInputs } from './inputs.ts';

export const REAL_CLIP = 'Xenova/clip-vit-base-patch32';

export interface RunReportOptions {
  /** The page title; empty: derived from the dataset and target. */
  title?: string;
}

export interface RenderedReport {
  title: string;
  markdown: string;
  html: string;
  charts: Chart[];
}

/** The charts the inputs have data for, in report order. */
export async function renderRunCharts(inputs: ReportInputs): Promise<Chart[]> {
  const charts: Chart[] = [];
  if (inputs.history.history.length > 0)
    charts.push({
      file: 'learning-curves.svg',
      title: 'Learning curves',
      svg: await learningCurvesSvg(inputs.history),
    });
  if (inputs.metrics.confusion)
    charts.push({
      file: 'confusion-matrix.svg',
      title: 'Confusion matrix (test)',
      svg: await confusionMatrixSvg(inputs.metrics.confusion),
    });
  if (inputs.metrics.per_class?.length)
    charts.push({
      file: 'per-class-f1.svg',
      title: 'F1 per class (test)',
      svg: await perClassF1Svg(inputs.metrics.per_class),
    });
  return charts;
}

/** val − test accuracy, as the seed study reports it; the evaluate stage's own figure when it wrote one. */
export const generalisationGap = (m: ReportInputs['metrics']) =>
  typeof m.generalisation_gap === 'number' ? m.generalisation_gap : m.val.accuracy - m.test.accuracy;

/** Training wall time: the train stage's total, else its epochs' seconds summed. */
export function trainSeconds(h: ReportInputs['history']): number | undefined {
  if (typeof h.seconds === 'number') return h.seconds;
  const per = h.history.map((e) => e.seconds).filter((s): s is number => typeof s === 'number');
  return per.length > 0 ? per.reduce((a, b) => a + b, 0) : undefined;
}

export function reportTitle(inputs: ReportInputs, opts: RunReportOptions = {}): string {
  return opts.title?.trim() || `${inputs.dataset.target} classifier on ${inputs.dataset.dataset}`;
}

function warnings(inputs: ReportInputs): Block[] {
  const out: Block[] = [];
  const { embed, dataset } = inputs;
  if (embed.note)
    out.push({
      kind: 'callout',
      tone: 'warning',
      text:
        `**These embeddings come from a generated model (\`${embed.model}\`), NOT CLIP.** ` +
        `The accuracy below measures the pipeline, not CLIP features. Model note: ${embed.note}\n` +
        `To use real CLIP set \`embed.model: ${REAL_CLIP}\` (or run with \`--set embed.model=${REAL_CLIP}\`).`,
    });
  const dataNote = dataset.provenance?.note;
  if (typeof dataNote === 'string' && dataNote)
    out.push({ kind: 'callout', tone: 'warning', text: `**Dataset \`${dataset.dataset}\`:** ${dataNote}` });
  return out;
}

function headline(inputs: ReportInputs): Block[] {
  const { metrics: m, history: h } = inputs;
  const backend = m.backend ?? h.backend ?? DASH;
  const n = (v?: number) => (typeof v === 'number' ? ` (n = ${grouped(v)})` : '');
  return [
    { kind: 'heading', level: 2, text: 'Headline' },
    {
      kind: 'table',
      head: ['Metric', 'Value'],
      align: ['left', 'right'],
      rows: [
        ['**Test accuracy**', `**${pct(m.test.accuracy)}**${n(m.test.n)}`],
        ['Validation accuracy', `${pct(m.val.accuracy)}${n(m.val.n)}`],
        ['Generalisation gap (val − test)', pp(generalisationGap(m))],
        ['Macro-F1 (test / val)', `${fixed(m.test.macro_f1)} / ${fixed(m.val.macro_f1)}`],
        ['Loss (test / val)', `${fixed(m.test.loss, 4)} / ${fixed(m.val.loss, 4)}`],
        ['Best epoch / stopped epoch', `${h.best_epoch ?? DASH} / ${h.stopped_epoch ?? DASH}`],
        ['Training speed', `${grouped(h.samples_per_second)} samples/s`],
        ['Backend', `\`${backend}\``],
      ],
    },
    {
      kind: 'small',
      text: 'Gap = validation − test accuracy, in percentage points; negative: the test split scored higher.',
    },
  ];
}

function evaluation(inputs: ReportInputs, charts: Map<string, Chart>): Block[] {
  const { metrics: m } = inputs;
  const out: Block[] = [{ kind: 'heading', level: 2, text: 'Evaluation (test split)' }];
  const cm = charts.get('confusion-matrix.svg');
  if (cm) out.push({ kind: 'chart', chart: cm });
  if (m.per_class?.length) {
    out.push({
      kind: 'table',
      head: ['Class', 'Precision', 'Recall', 'F1', 'Support'],
      align: ['left', 'right', 'right', 'right', 'right'],
      rows: m.per_class.map((c) => [c.class, fixed(c.precision), fixed(c.recall), fixed(c.f1), grouped(c.support)]),
    });
  }
  const f1 = charts.get('per-class-f1.svg');
  if (f1) out.push({ kind: 'chart', chart: f1 });
  return out;
}

function training(inputs: ReportInputs, charts: Map<string, Chart>): Block[] {
  const { history: h } = inputs;
  const out: Block[] = [{ kind: 'heading', level: 2, text: 'Training' }];
  const curves = charts.get('learning-curves.svg');
  if (curves) out.push({ kind: 'chart', chart: curves });
  const best = h.history.find((e) => e.epoch === h.best_epoch);
  if (best)
    out.push({
      kind: 'text',
      text:
        `Best epoch ${best.epoch} of ${h.history.length}: train loss ${fixed(best.train_loss, 4)}, ` +
        `val loss ${fixed(best.val_loss, 4)}, train accuracy ${pct(best.train_acc)}, ` +
        `val accuracy ${pct(best.val_acc)}.`,
    });
  return out;
}

function datasetSection(inputs: ReportInputs): Block[] {
  const { dataset: d, split: s } = inputs;
  const classes = d.classes ?? Object.keys(d.classCounts);
  const rows: string[][] = [
    ['Dataset', `\`${d.dataset}\``],
    ['Source', `\`${d.source}\``],
    ['Target', `\`${d.target}\``],
    ['Classes', classes.map((c) => `${c} (${grouped(d.classCounts[c] ?? 0)})`).join(', ')],
    ['Images', grouped(d.count)],
  ];
  const excluded = Object.entries(d.excluded ?? {}).filter(([, n]) => n > 0);
  rows.push(['Excluded', excluded.length ? excluded.map(([k, n]) => `${k}: ${grouped(n)}`).join(', ') : 'none']);
  for (const [k, v] of Object.entries(d.provenance ?? {})) rows.push([`provenance.${k}`, plain(v)]);
  const parts = Object.keys(s.parts);
  return [
    { kind: 'heading', level: 2, text: 'Dataset and split' },
    { kind: 'table', head: ['Field', 'Value'], rows },
    {
      kind: 'text',
      text: `Stratified split, ratios \`${(s.ratios ?? []).join(' / ')}\`, seed \`${plain(s.seed)}\`:`,
    },
    {
      kind: 'table',
      head: ['Part', 'Total', ...classes],
      align: ['left', 'right', ...classes.map(() => 'right' as const)],
      rows: parts.map((p) => [
        p,
        grouped(s.parts[p].total),
        ...classes.map((c) => grouped(s.parts[p].classes?.[c] ?? 0)),
      ]),
    },
  ];
}

function modelSection(inputs: ReportInputs): Block[] {
  const { embed: e, metrics: m, history: h } = inputs;
  const rows: string[][] = [
    ['Embedding model', `\`${e.model}\``],
    ['Model source', plain(e.source)],
  ];
  if (e.note) rows.push(['Model note', `**${e.note}**`]);
  rows.push(
    ['dtype', plain(e.dtype)],
    ['Embedding size', plain(e.dim)],
    ['L2-normalised', plain(e.normalize)],
    ['Embeddings', `${grouped(e.count)} (${grouped(e.computed)} computed, ${grouped(e.cached)} cached)`],
    ['Skipped images', grouped(e.skipped?.length ?? 0)],
    ['Embedding cache key', e.cache_key ? `\`${e.cache_key}\`` : DASH],
    ['Classifier backend', `\`${m.backend ?? h.backend ?? DASH}\``],
  );
  for (const [k, v] of Object.entries(e.versions ?? {})) rows.push([`version: ${k}`, plain(v)]);
  return [
    { kind: 'heading', level: 2, text: 'Model' },
    { kind: 'table', head: ['Field', 'Value'], rows },
  ];
}

function timings(inputs: ReportInputs): Block[] {
  const { embed: e, history: h, metrics: m } = inputs;
  const rows: string[][] = [];
  if (typeof e.seconds === 'number')
    rows.push([
      'embed',
      duration(e.seconds),
      `${grouped(e.computed)} images computed` +
        (typeof e.images_per_second === 'number' ? `, ${grouped(e.images_per_second, 1)} images/s` : ''),
    ]);
  const train = trainSeconds(h);
  if (train !== undefined)
    rows.push([
      'train',
      duration(train),
      `${h.history.length} epochs, ${duration(train / Math.max(1, h.history.length))} per epoch, ` +
        `${grouped(h.samples_per_second)} samples/s`,
    ]);
  if (typeof m.seconds === 'number') rows.push(['evaluate', duration(m.seconds), '']);
  return [
    { kind: 'heading', level: 2, text: 'Timings' },
    rows.length
      ? { kind: 'table', head: ['Stage', 'Time', 'Detail'], align: ['left', 'right', 'left'], rows }
      : { kind: 'text', text: 'No stage recorded its time.' },
    {
      kind: 'small',
      text: "From the stages' own records (embed's meta.json, train's history.json); stages that keep no record are not listed.",
    },
  ];
}

function configSection(config: Record<string, unknown>): Block[] {
  return [
    { kind: 'heading', level: 2, text: 'Configuration' },
    { kind: 'code', lang: 'yaml', text: yaml.dump(config, { lineWidth: 120, noRefs: true, flowLevel: 2 }) },
  ];
}

function hashesSection(inputs: ReportInputs): Block[] {
  const head: Block = { kind: 'heading', level: 2, text: 'Hashes' };
  if (!inputs.lock || Object.keys(inputs.lock).length === 0)
    return [head, { kind: 'text', text: 'No `pipeline.lock` yet: no stage had finished when this report ran.' }];
  const rows = Object.entries(inputs.lock).map(([name, s]) => [
    name,
    `\`${shortHash(s.fingerprint)}\``,
    Object.keys(s.code ?? {}).length.toString(),
    Object.entries(s.outs ?? {})
      .map(([p, r]) => `\`${p}\` ${shortHash(r.hash)}`)
      .join(', ') || DASH,
  ]);
  return [
    head,
    { kind: 'table', head: ['Stage', 'Fingerprint', 'Code files', 'Outs'], rows },
    {
      kind: 'small',
      text:
        '`pipeline.lock` as of when this report ran: the engine writes a stage’s entry after the stage ' +
        'succeeds, so this report’s own entry, and any stage run after it, are not reflected. ' +
        'BLAKE3, first 12 hex digits; the fingerprint covers code, deps and params.',
    },
  ];
}

/** The report's blocks; `config` is the stage's resolved params (shown as YAML). */
export function runReportBlocks(
  inputs: ReportInputs,
  config: Record<string, unknown>,
  charts: Chart[],
  opts: RunReportOptions = {},
): Block[] {
  const byFile = new Map(charts.map((c) => [c.file, c]));
  const { metrics: m, dataset: d, embed: e } = inputs;
  const train = (config.train ?? {}) as Record<string, unknown>;
  const mlp = train.hidden
    ? ` MLP \`${plain(train.hidden)}\`${train.activation ? ` ${plain(train.activation)}` : ''}`
    : '';
  return [
    { kind: 'heading', level: 1, text: reportTitle(inputs, opts) },
    {
      kind: 'text',
      text:
        `**${pct(m.test.accuracy)}** test accuracy predicting \`${d.target}\` (${(d.classes ?? []).length} classes) ` +
        `on \`${d.dataset}\`, from \`${e.model}\` embeddings and an${mlp || ' MLP'} classifier.`,
    },
    ...warnings(inputs),
    ...headline(inputs),
    ...training(inputs, byFile),
    ...evaluation(inputs, byFile),
    ...datasetSection(inputs),
    ...modelSection(inputs),
    ...timings(inputs),
    ...configSection(config),
    ...hashesSection(inputs),
  ];
}

export async function renderRunReport(
  inputs: ReportInputs,
  config: Record<string, unknown>,
  opts: RunReportOptions = {},
): Promise<RenderedReport> {
  const charts = await renderRunCharts(inputs);
  const blocks = runReportBlocks(inputs, config, charts, opts);
  const title = reportTitle(inputs, opts);
  return { title, markdown: toMarkdown(blocks), html: toHtml(title, blocks), charts };
}

/** Write report.md, report.html and the charts' .svg files into `dir` (created if missing). */
export function writeReportFiles(dir: string, report: RenderedReport): string[] {
  mkdirSync(dir, { recursive: true });
  const files = [
    ['report.md', report.markdown],
    ['report.html', report.html],
    ...report.charts.map((c) => [c.file, c.svg]),
  ];
  for (const [name, text] of files) writeFileSync(path.join(dir, name), text);
  return files.map(([name]) => name);
}
