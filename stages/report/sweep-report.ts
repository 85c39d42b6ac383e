// The sweep comparison report: many runs of the pipeline with different overrides, grouped into
// configurations (same overrides, any seed), ranked by one metric, each shown as mean ± std over its
// seeds. Writes <dir>/<name>.md, <name>.html and <name>.svg (the ranked chart).
//
//   rows (one per run) --group by params minus the seed key--> configurations --sort by mean--> ranked

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sweepChartSvg } from './charts.ts';
import { type Block, type Chart, toHtml, toMarkdown } from './document.ts';
import { DASH, metricValue, plain } from './format.ts';

export interface SweepRow {
  experiment: string;
  /** The overrides that differ between runs, as dotted keys (`train.lr`); nested objects are flattened. */
  params: Record<string, unknown>;
  seed?: number;
  metrics: Record<string, number>;
}

export interface SweepOptions {
  /** The metric to rank by. Default `test_accuracy`. */
  metric?: string;
  /** The param that only repeats a configuration, excluded from grouping. Default `train.seed`. */
  seedKey?: string;
  /** Default: true, except for metrics whose name says loss or error. */
  higherIsBetter?: boolean;
  /** Metric columns of the table, in order. Default: the rank metric, then every other one, sorted. */
  metrics?: string[];
  /** Page title. Default `Sweep <name>`. */
  title?: string;
}

/** Mean and sample standard deviation (n − 1) of one metric over a configuration's runs. */
export interface Stat {
  mean: number;
  /** Absent for a single run: one value has no spread. */
  std?: number;
  n: number;
}

export interface SweepGroup {
  /** Stable identity: the params as sorted JSON. */
  key: string;
  /** `lr=0.002, activation=relu`; `baseline` when the params are empty. */
  label: string;
  params: Record<string, unknown>;
  experiments: string[];
  seeds: number[];
  stats: Record<string, Stat>;
}

export interface SweepResult {
  groups: SweepGroup[];
  /** Absolute paths written. */
  files: string[];
}

const DEFAULT_METRIC = 'test_accuracy';
const DEFAULT_SEED_KEY = 'train.seed';

export function meanStd(values: number[]): Stat {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, n };
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1);
  return { mean, std: Math.sqrt(variance), n };
}

function flatten(obj: Record<string, unknown>, prefix = '', out: Record<string, unknown> = {}) {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v as Record<string, unknown>, key, out);
    else out[key] = v;
  }
  return out;
}

const lowerIsBetter = (metric: string) => /loss|error/i.test(metric);

/** Short labels: a key's last segment when no other key in the sweep shares it (`train.lr` -> `lr`). */
function labeller(groups: Array<Record<string, unknown>>): (params: Record<string, unknown>) => string {
  const keys = [...new Set(groups.flatMap((p) => Object.keys(p)))];
  const tail = (k: string) => k.slice(k.lastIndexOf('.') + 1);
  const short = new Map(keys.map((k) => [k, keys.filter((o) => tail(o) === tail(k)).length === 1 ? tail(k) : k]));
  return (params) => {
    const parts = Object.keys(params)
      .sort()
      .map((k) => `${short.get(k) ?? k}=${plain(params[k])}`);
    return parts.length ? parts.join(', ') : 'baseline';
  };
}

/** Group runs into configurations and rank them by `opts.metric`, best first (missing values last). */
export function groupSweep(rows: SweepRow[], opts: SweepOptions = {}): SweepGroup[] {
  const metric = opts.metric ?? DEFAULT_METRIC;
  const seedKey = opts.seedKey ?? DEFAULT_SEED_KEY;
  const higher = opts.higherIsBetter ?? !lowerIsBetter(metric);
  const byKey = new Map<string, { params: Record<string, unknown>; rows: Array<SweepRow & { seedValue?: number }> }>();
  for (const row of rows) {
    const flat = flatten(row.params);
    const seedParam = flat[seedKey];
    delete flat[seedKey];
    const params = Object.fromEntries(
      Object.keys(flat)
        .sort()
        .map((k) => [k, flat[k]]),
    );
    const key = JSON.stringify(params);
    const seed = row.seed ?? (typeof seedParam === 'number' ? seedParam : undefined);
    const entry = byKey.get(key) ?? { params, rows: [] };
    entry.rows.push({ ...row, seedValue: seed });
    byKey.set(key, entry);
  }
  const label = labeller([...byKey.values()].map((g) => g.params));
  const groups: SweepGroup[] = [...byKey.entries()].map(([key, g]) => {
    const names = [...new Set(g.rows.flatMap((r) => Object.keys(r.metrics)))].sort();
    const stats: Record<string, Stat> = {};
    for (const name of names) {
      const values = g.rows.map((r) => r.metrics[name]).filter((v) => typeof v === 'number' && Number.isFinite(v));
      if (values.length > 0) stats[name] = meanStd(values);
    }
    return {
      key,
      label: label(g.params),
      params: g.params,
      experiments: g.rows.map((r) => r.experiment).sort(),
      seeds: g.rows
        .map((r) => r.seedValue)
        .filter((s): s is number => s !== undefined)
        .sort((a, b) => a - b),
      stats,
    };
  });
  const score = (g: SweepGroup) => g.stats[metric]?.mean;
  return groups.sort((a, b) => {
    const sa = score(a);
    const sb = score(b);
    if (sa === undefined || sb === undefined) return sa === sb ? cmp(a.label, b.label) : sa === undefined ? 1 : -1;
    return sa === sb ? cmp(a.label, b.label) : higher ? sb - sa : sa - sb;
  });
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** `73.03% ± 0.40 pp` for accuracies, `0.5412 ± 0.0123` otherwise; a single run has no ± part. */
export function formatStat(metric: string, s: Stat | undefined): string {
  if (!s) return DASH;
  if (s.std === undefined) return metricValue(metric, s.mean);
  const spread = /acc/i.test(metric) ? `${(s.std * 100).toFixed(2)} pp` : metricValue(metric, s.std);
  return `${metricValue(metric, s.mean)} ± ${spread}`;
}

function metricColumns(groups: SweepGroup[], metric: string, opts: SweepOptions): string[] {
  if (opts.metrics) return opts.metrics;
  const all = [...new Set(groups.flatMap((g) => Object.keys(g.stats)))].filter((m) => m !== metric).sort();
  return [metric, ...all];
}

function bestBlocks(groups: SweepGroup[], metric: string): Block[] {
  const [best, second] = groups;
  if (!best?.stats[metric]) return [{ kind: 'text', text: `No run recorded \`${metric}\`.` }];
  const b = best.stats[metric];
  const lines: string[] = [
    `**Best configuration: \`${best.label}\`**: ${metric} ${formatStat(metric, b)} ` +
      `(${b.n} run${b.n === 1 ? '' : 's'}: ${best.experiments.join(', ')}).`,
  ];
  const s = second?.stats[metric];
  if (s) {
    const lead = Math.abs(b.mean - s.mean);
    const leadText = /acc/i.test(metric) ? `${(lead * 100).toFixed(2)} pp` : metricValue(metric, lead);
    const noise = Math.max(b.std ?? 0, s.std ?? 0) * (1 + 1e-9);
    lines.push(
      `Lead over #2 (\`${second.label}\`): ${leadText}` +
        (noise > 0 && lead <= noise ? ': within one standard deviation, so these seeds do not settle the order.' : '.'),
    );
  }
  if (b.n === 1) lines.push('A single run: repeat it with other seeds before trusting the ranking.');
  return lines.map((text) => ({ kind: 'text', text }));
}

export function sweepBlocks(
  name: string,
  groups: SweepGroup[],
  rows: SweepRow[],
  opts: SweepOptions,
  chart?: Chart,
): Block[] {
  const metric = opts.metric ?? DEFAULT_METRIC;
  const seedKey = opts.seedKey ?? DEFAULT_SEED_KEY;
  const columns = metricColumns(groups, metric, opts);
  const repeats = groups.some((g) => (g.stats[metric]?.n ?? 0) > 1);
  const order = (opts.higherIsBetter ?? !lowerIsBetter(metric)) ? 'highest first' : 'lowest first';
  return [
    { kind: 'heading', level: 1, text: opts.title ?? `Sweep ${name}` },
    {
      kind: 'text',
      text:
        `${rows.length} runs in ${groups.length} configurations, ranked by \`${metric}\` (${order}). ` +
        `Runs that differ only in \`${seedKey}\` are one configuration.`,
    },
    ...bestBlocks(groups, metric),
    { kind: 'heading', level: 2, text: 'Ranking' },
    {
      kind: 'table',
      head: ['#', 'Configuration', 'Runs', ...columns.map((c) => (c === metric ? `**${c}**` : c)), 'Experiments'],
      align: ['right', 'left', 'right', ...columns.map(() => 'right' as const), 'left'],
      rows: groups.map((g, i) => [
        String(i + 1),
        `\`${g.label}\``,
        String(g.experiments.length),
        ...columns.map((c) => formatStat(c, g.stats[c])),
        g.experiments.join(', '),
      ]),
    },
    ...(repeats
      ? [{ kind: 'small' as const, text: 'mean ± sample standard deviation (n − 1) over the runs of a configuration.' }]
      : []),
    ...(chart ? [{ kind: 'chart' as const, chart }] : []),
    { kind: 'heading', level: 2, text: 'All runs' },
    {
      kind: 'table',
      head: ['Experiment', 'Seed', 'Overrides', metric],
      align: ['left', 'right', 'left', 'right'],
      rows: [...rows]
        .sort((a, b) => cmp(a.experiment, b.experiment))
        .map((r) => {
          const flat = flatten(r.params);
          const seed = r.seed ?? flat[seedKey];
          const overrides = Object.keys(flat)
            .filter((k) => k !== seedKey)
            .sort()
            .map((k) => `${k}=${plain(flat[k])}`)
            .join(', ');
          return [
            r.experiment,
            plain(seed),
            overrides ? `\`${overrides}\`` : DASH,
            metricValue(metric, r.metrics[metric]),
          ];
        }),
    },
  ];
}

/** Write `<dir>/<name>.md`, `<name>.html` and `<name>.svg`; returns the ranked groups and the files. */
export async function writeSweepReport(
  dir: string,
  name: string,
  rows: SweepRow[],
  opts: SweepOptions = {},
): Promise<SweepResult> {
  const metric = opts.metric ?? DEFAULT_METRIC;
  const groups = groupSweep(rows, opts);
  const ranked = groups.filter((g) => g.stats[metric]);
  const chart: Chart | undefined =
    ranked.length > 0
      ? {
          file: `${name}.svg`,
          title: `${metric} by configuration`,
          svg: await sweepChartSvg(
            ranked.map((g) => ({ label: g.label, ...g.stats[metric] })),
            metric,
          ),
        }
      : undefined;
  const blocks = sweepBlocks(name, groups, rows, opts, chart);
  mkdirSync(dir, { recursive: true });
  const out: Array<[string, string]> = [
    [`${name}.md`, toMarkdown(blocks)],
    [`${name}.html`, toHtml(opts.title ?? `Sweep ${name}`, blocks)],
  ];
  if (chart) out.push([chart.file, chart.svg]);
  const files = out.map(([file, text]) => {
    const abs = path.join(dir, file);
    writeFileSync(abs, text);
    return abs;
  });
  return { groups, files };
}
