// The report's charts: Vega-Lite specs rendered to SVG strings in Node, with no browser, no canvas
// and no network (the data is inline, the font is plain sans-serif, text widths are vega's estimate).
//
//   Vega-Lite spec --compile--> Vega spec --View(renderer: none).toSVG()--> SVG string --stableIds--> bytes
//
// The same input gives the same bytes: nothing depends on the clock, and element ids (clip paths) are
// renamed to `<chart>-<n>` in order of appearance, which also keeps them unique when several charts are
// inlined into one HTML page.

import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { ClassMetrics, Confusion, TrainHistory } from './inputs.ts';

const FONT = 'sans-serif';
const TRAIN = '#4c78a8';
const VAL = '#f58518';
const HIGHLIGHT = '#54a24b';

/** Shared look: plain fonts, white background, no outer frame. */
const CONFIG = {
  background: 'white',
  font: FONT,
  view: { stroke: null },
  axis: { labelFont: FONT, titleFont: FONT, labelFontSize: 11, titleFontSize: 12, grid: true, gridOpacity: 0.5 },
  legend: { labelFont: FONT, titleFont: FONT, labelFontSize: 11, titleFontSize: 12 },
  title: { font: FONT, fontSize: 14, anchor: 'start' as const, subtitleFont: FONT, subtitleColor: '#555' },
  header: { labelFont: FONT, titleFont: FONT },
  text: { font: FONT },
};

/** Compile and render one Vega-Lite spec; `id` names the chart's element ids. */
export async function renderSvg(spec: TopLevelSpec, id: string): Promise<string> {
  const quiet = vega.logger(vega.None);
  const compiled = compile({ ...spec, config: { ...CONFIG, ...(spec.config ?? {}) } } as TopLevelSpec, {
    logger: quiet,
  }).spec;
  // A loader that refuses everything: a chart must never reach for a file or the network.
  const loader = vega.loader();
  loader.load = async (uri: string) => {
    throw new Error(`chart ${id}: tried to load ${uri}; report charts must carry their data inline`);
  };
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', loader, logLevel: vega.None });
  try {
    return stableIds(await view.toSVG(), id);
  } finally {
    view.finalize();
  }
}

/** Rename every `id="…"` (and its `url(#…)` / `href="#…"` uses) to `<prefix>-<n>`, n in order of appearance. */
export function stableIds(svg: string, prefix: string): string {
  const ids = new Map<string, string>();
  for (const m of svg.matchAll(/\sid="([^"]+)"/g)) if (!ids.has(m[1])) ids.set(m[1], `${prefix}-${ids.size + 1}`);
  if (ids.size === 0) return svg;
  return svg
    .replace(/(\sid=")([^"]+)(")/g, (_, a, v, b) => `${a}${ids.get(v) ?? v}${b}`)
    .replace(/url\(#([^)]+)\)/g, (whole, v) => (ids.has(v) ? `url(#${ids.get(v)})` : whole))
    .replace(/(href=")#([^"]+)(")/g, (whole, a, v, b) => (ids.has(v) ? `${a}#${ids.get(v)}${b}` : whole));
}

/** (a) Train / val loss and accuracy per epoch, side by side, the best epoch marked with a dashed rule. */
export function learningCurvesSvg(history: TrainHistory): Promise<string> {
  const values = history.history.flatMap((e) => [
    { epoch: e.epoch, metric: 'loss', split: 'train', value: e.train_loss },
    { epoch: e.epoch, metric: 'loss', split: 'val', value: e.val_loss },
    { epoch: e.epoch, metric: 'accuracy', split: 'train', value: e.train_acc },
    { epoch: e.epoch, metric: 'accuracy', split: 'val', value: e.val_acc },
  ]);
  const best = history.best_epoch;
  const panel = (metric: 'loss' | 'accuracy', title: string) => ({
    width: 330,
    height: 220,
    title: best === undefined ? title : { text: title, subtitle: `dashed: best epoch ${best}` },
    transform: [{ filter: `datum.metric === '${metric}'` }],
    layer: [
      {
        mark: { type: 'line', strokeWidth: 2, interpolate: 'linear' },
        encoding: {
          x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
          y: {
            field: 'value',
            type: 'quantitative',
            title: metric,
            scale: { zero: false },
            axis: metric === 'accuracy' ? { format: '.0%' } : {},
          },
          color: {
            field: 'split',
            type: 'nominal',
            title: null,
            scale: { domain: ['train', 'val'], range: [TRAIN, VAL] },
          },
        },
      },
      ...(best === undefined
        ? []
        : [
            {
              data: { values: [{ epoch: best }] },
              transform: [],
              mark: { type: 'rule', strokeDash: [4, 3], color: '#555' },
              encoding: { x: { field: 'epoch', type: 'quantitative' } },
            },
          ]),
    ],
  });
  const spec = {
    data: { values },
    hconcat: [panel('loss', 'Loss'), panel('accuracy', 'Accuracy')],
    resolve: { scale: { y: 'independent' } },
  };
  return renderSvg(spec as unknown as TopLevelSpec, 'learning-curves');
}

/** (b) Confusion matrix: rows are the true class, columns the prediction, each cell its count. */
export function confusionMatrixSvg(confusion: Confusion): Promise<string> {
  const { labels, matrix } = confusion;
  const values = labels.flatMap((actual, i) =>
    labels.map((predicted, j) => ({ actual, predicted, count: matrix[i]?.[j] ?? 0 })),
  );
  const max = Math.max(1, ...values.map((v) => v.count));
  const cell = Math.max(40, Math.min(90, Math.floor(360 / Math.max(1, labels.length))));
  const spec = {
    data: { values },
    width: cell * labels.length,
    height: cell * labels.length,
    title: 'Confusion matrix (test)',
    encoding: {
      x: {
        field: 'predicted',
        type: 'nominal',
        sort: labels,
        title: 'predicted',
        axis: { labelAngle: 0, orient: 'top', grid: false },
      },
      y: { field: 'actual', type: 'nominal', sort: labels, title: 'true class', axis: { grid: false } },
    },
    layer: [
      {
        mark: { type: 'rect', stroke: 'white', strokeWidth: 1 },
        encoding: {
          color: {
            field: 'count',
            type: 'quantitative',
            title: 'count',
            scale: { scheme: 'blues', domain: [0, max] },
          },
        },
      },
      {
        mark: { type: 'text', fontSize: 13, fontWeight: 'bold' },
        encoding: {
          text: { field: 'count', type: 'quantitative' },
          color: { condition: { test: `datum.count > ${max / 2}`, value: 'white' }, value: '#222' },
        },
      },
    ],
  };
  return renderSvg(spec as unknown as TopLevelSpec, 'confusion-matrix');
}

/** (c) F1 per class as horizontal bars, with the value at the end of each bar and macro-F1 as a rule. */
export function perClassF1Svg(perClass: ClassMetrics[]): Promise<string> {
  const values = perClass.map((c) => ({ class: c.class, f1: c.f1, label: c.f1.toFixed(3) }));
  const macro = values.length > 0 ? values.reduce((s, v) => s + v.f1, 0) / values.length : 0;
  const y = { field: 'class', type: 'nominal', sort: perClass.map((c) => c.class), title: null };
  const spec = {
    width: 360,
    height: { step: 28 },
    title: { text: 'F1 per class (test)', subtitle: `dashed: macro-F1 ${macro.toFixed(3)}` },
    layer: [
      {
        data: { values },
        mark: { type: 'bar', color: TRAIN },
        encoding: { y, x: { field: 'f1', type: 'quantitative', title: 'F1', scale: { domain: [0, 1] } } },
      },
      {
        data: { values },
        mark: { type: 'text', align: 'left', dx: 4, fontSize: 11 },
        encoding: { y, x: { field: 'f1', type: 'quantitative' }, text: { field: 'label' } },
      },
      {
        data: { values: [{ macro }] },
        mark: { type: 'rule', strokeDash: [4, 3], color: '#555' },
        encoding: { x: { field: 'macro', type: 'quantitative' } },
      },
    ],
  };
  return renderSvg(spec as unknown as TopLevelSpec, 'per-class-f1');
}

/** One bar of the sweep chart: a configuration's mean over its runs and, with repeats, the std. */
export interface RankedBar {
  label: string;
  mean: number;
  /** Sample standard deviation; absent for a single run. */
  std?: number;
  n: number;
}

/**
 * (d) A metric per configuration, best first, as horizontal bars with mean ± std whiskers where a
 * configuration has repeats. The axis is zoomed to the values (noted in the subtitle): sweeps differ in
 * tenths of a percent, which bars from zero would hide.
 */
export function sweepChartSvg(bars: RankedBar[], metric: string, opts: { percent?: boolean } = {}): Promise<string> {
  const percent = opts.percent ?? /acc/i.test(metric);
  const fmt = (v: number) => (percent ? `${(v * 100).toFixed(2)}%` : v.toPrecision(4));
  const values = bars.map((b, i) => ({
    rank: i + 1,
    label: `${i + 1}. ${b.label}`,
    mean: b.mean,
    lo: b.mean - (b.std ?? 0),
    hi: b.mean + (b.std ?? 0),
    text: b.std === undefined ? fmt(b.mean) : `${fmt(b.mean)} ± ${fmt(b.std).replace('%', '')} (n=${b.n})`,
  }));
  const lows = values.map((v) => v.lo);
  const highs = values.map((v) => v.hi);
  const min = lows.length > 0 ? Math.min(...lows) : 0;
  const max = highs.length > 0 ? Math.max(...highs) : 1;
  const pad = (max - min || Math.abs(max) || 1) * 0.15;
  const domain = [min - pad, max + pad * 3];
  const order = values.map((v) => v.label);
  const y = { field: 'label', type: 'nominal', sort: order, title: null, axis: { labelLimit: 320 } };
  const x = {
    field: 'mean',
    type: 'quantitative',
    title: metric,
    scale: { domain, zero: false, nice: false },
    axis: percent ? { format: '.1%' } : {},
  };
  const spec = {
    data: { values },
    width: 420,
    height: { step: 26 },
    title: { text: `${metric} by configuration`, subtitle: 'best first; whiskers: mean ± std over seeds; axis zoomed' },
    layer: [
      {
        mark: { type: 'bar', clip: true },
        encoding: { y, x, color: { condition: { test: 'datum.rank === 1', value: HIGHLIGHT }, value: TRAIN } },
      },
      {
        transform: [{ filter: 'datum.hi > datum.lo' }],
        mark: { type: 'rule', color: '#222', strokeWidth: 1.5 },
        encoding: { y, x: { field: 'lo', type: 'quantitative' }, x2: { field: 'hi' } },
      },
      {
        mark: { type: 'text', align: 'left', dx: 6, fontSize: 10, color: '#222' },
        encoding: { y, x: { field: 'hi', type: 'quantitative' }, text: { field: 'text' } },
      },
    ],
  };
  return renderSvg(spec as unknown as TopLevelSpec, 'sweep');
}
