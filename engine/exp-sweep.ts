// Running a sweep (exp-sweep-file.ts reads the file): its experiments a few at a time, resumable, then
// its rows (`.pipeline/experiments/sweeps/<name>.json`) and, when the project provides a report module,
// its report.
//
// A rerun skips the experiments already recorded as successful with the same overrides. The first
// experiment runs alone and the rest after it, `jobs` at a time: by then the stages they share
// (upstream of whatever the sweep varies) are in the run-cache, and each experiment restores them
// instead of recomputing them.

import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pLimit from 'p-limit';
import { loadConfig } from './config.ts';
import { expandSweep, type SweepExperiment, type SweepSpec } from './exp-sweep-file.ts';
import {
  checkName,
  type ExpEvent,
  type ExperimentRecord,
  experimentsDir,
  identity,
  parseSets,
  readExperiment,
  runExperiment,
  toSet,
  warnUnshared,
  writeAtomic,
} from './experiments.ts';
import { PipelineError } from './failure.ts';
import type { Graph } from './graph.ts';
import type { Pipeline } from './types.ts';

/** One row per successful experiment: the shape sweep reports take. */
export interface SweepRow {
  experiment: string;
  overrides: Record<string, unknown>;
  params: Record<string, unknown>;
  seed?: number;
  metrics: Record<string, number>;
}

export type SweepEvent =
  | ExpEvent
  | { type: 'sweep-start'; sweep: string; total: number; toRun: number; jobs: number }
  | { type: 'exp-skipped'; name: string; record: ExperimentRecord };

export interface SweepRunOptions {
  root: string;
  pipeline: Pipeline;
  graph: Graph;
  spec: SweepSpec;
  configName: string;
  /** `--set` from the command line: added to every experiment (after base, before the grid). */
  extraSets: string[];
  jobs: number;
  force: boolean;
  signal: AbortSignal;
  emit: (e: SweepEvent) => void;
  env?: Record<string, string>;
}

export interface SweepOutcome {
  name: string;
  status: 'success' | 'failed' | 'skipped' | 'interrupted';
  record?: ExperimentRecord;
}

export interface SweepResult {
  sweep: string;
  experiments: SweepOutcome[];
  rows: SweepRow[];
  interrupted: boolean;
  failed: number;
  /** `.pipeline/experiments/sweeps/<name>.json`, relative to the project. */
  rowsFile: string;
  /** Files the report module wrote, relative to the project. */
  report: string[];
  seconds: number;
}

const setsOf = (extra: string[], e: SweepExperiment) => [
  ...extra,
  ...Object.entries(e.overrides).map(([k, v]) => toSet(k, v)),
];

export async function runSweep(opts: SweepRunOptions): Promise<SweepResult> {
  const started = Date.now();
  const { root, spec, emit, signal } = opts;
  const experiments = expandSweep(spec);
  // Every experiment's config must load before any runs: a bad value in the 12th should not wait for 11.
  for (const e of experiments) {
    checkName(e.name);
    loadConfig(root, opts.configName, setsOf(opts.extraSets, e));
  }
  const outcomes = new Map<string, SweepOutcome>();
  const todo: SweepExperiment[] = [];
  for (const e of experiments) {
    const prev = readExperiment(root, e.name);
    const sets = setsOf(opts.extraSets, e);
    if (prev && !opts.force) {
      if (
        prev.status === 'success' &&
        identity(prev.configName, prev.overrides) === identity(opts.configName, parseSets(sets))
      ) {
        outcomes.set(e.name, { name: e.name, status: 'skipped', record: prev });
        continue;
      }
      if (prev.sweep !== spec.name) {
        throw new PipelineError({
          reason: 'invalid-definition',
          message: `experiment '${e.name}' exists and is not part of sweep '${spec.name}': rename the sweep, or --force to replace it`,
        });
      }
    }
    todo.push(e);
  }
  emit({ type: 'sweep-start', sweep: spec.name, total: experiments.length, toRun: todo.length, jobs: opts.jobs });
  if (todo.length > 0) warnUnshared(root, opts.graph, emit);
  for (const e of experiments) {
    const o = outcomes.get(e.name);
    if (o?.record) emit({ type: 'exp-skipped', name: e.name, record: o.record });
  }

  const runOne = async (e: SweepExperiment): Promise<void> => {
    if (signal.aborted) {
      outcomes.set(e.name, { name: e.name, status: 'interrupted' });
      return;
    }
    const r = await runExperiment({
      root,
      pipeline: opts.pipeline,
      graph: opts.graph,
      name: e.name,
      configName: opts.configName,
      sets: setsOf(opts.extraSets, e),
      targets: [],
      sweep: spec.name,
      index: e.index,
      keep: false,
      signal,
      emit,
      env: opts.env,
    });
    outcomes.set(e.name, {
      name: e.name,
      status: r.interrupted ? 'interrupted' : (r.record?.status ?? 'failed'),
      record: r.record,
    });
  };
  // The first alone: what the rest share is then in the run-cache.
  const [first, ...rest] = todo;
  if (first) await runOne(first);
  const limit = pLimit(opts.jobs);
  await Promise.all(rest.map((e) => limit(() => runOne(e))));

  const rows: SweepRow[] = [];
  for (const e of experiments) {
    const rec = outcomes.get(e.name)?.record;
    if (rec?.status !== 'success') continue;
    rows.push({
      experiment: e.name,
      overrides: e.overrides,
      params: e.varied,
      ...(e.seed !== undefined ? { seed: e.seed } : {}),
      metrics: rec.metrics,
    });
  }
  const rowsFile = path.join(experimentsDir(root), 'sweeps', `${spec.name}.json`);
  writeAtomic(
    rowsFile,
    `${JSON.stringify(
      {
        name: spec.name,
        file: spec.file,
        config: opts.configName,
        repeats: spec.repeatKeys,
        created: new Date().toISOString(),
        experiments: experiments.map((e) => e.name),
        rows,
      },
      null,
      2,
    )}\n`,
  );

  const report: string[] = [];
  if (!signal.aborted && rows.length > 0) {
    try {
      report.push(...(await writeReport(opts, rows)));
    } catch (e) {
      emit({ type: 'exp-warning', message: `the sweep report failed: ${(e as Error).message}` });
    }
  }
  const list = experiments.map((e) => outcomes.get(e.name) ?? { name: e.name, status: 'interrupted' as const });
  return {
    sweep: spec.name,
    experiments: list,
    rows,
    interrupted: signal.aborted,
    failed: list.filter((o) => o.status === 'failed').length,
    rowsFile: path.relative(root, rowsFile),
    report: report.map((f) => path.relative(root, path.resolve(root, f))),
    seconds: (Date.now() - started) / 1000,
  };
}

export type SweepReportWriter = (
  dir: string,
  name: string,
  rows: Array<{ experiment: string; params: Record<string, unknown>; seed?: number; metrics: Record<string, number> }>,
  opts?: Record<string, unknown>,
) => Promise<{ files?: string[] } | undefined> | { files?: string[] } | undefined;

/**
 * The report module: the sweep file's `report` (a module path), else `writeSweepReport` on the pipeline
 * object (pipeline.ts: `Object.assign(definePipeline([...]), { writeSweepReport })`); none: no report.
 */
async function writeReport(opts: SweepRunOptions, rows: SweepRow[]): Promise<string[]> {
  const { spec, root } = opts;
  let writer: SweepReportWriter | undefined;
  if (spec.report.module) {
    const file = path.resolve(root, spec.report.module);
    const mod = await import(pathToFileURL(file).href);
    if (typeof mod.writeSweepReport !== 'function')
      throw new Error(`${spec.report.module} does not export writeSweepReport(dir, name, rows, opts)`);
    writer = mod.writeSweepReport;
  } else {
    const own = (opts.pipeline as Pipeline & { writeSweepReport?: unknown }).writeSweepReport;
    if (typeof own === 'function') writer = own as SweepReportWriter;
  }
  if (!writer) return [];
  const dir = path.resolve(root, spec.report.dir);
  const options = {
    ...(spec.repeatKeys.length === 1 ? { seedKey: spec.repeatKeys[0] } : {}),
    ...spec.report.options,
  };
  const result = await writer(
    dir,
    spec.name,
    rows.map(({ overrides: _, ...row }) => row),
    options,
  );
  return result?.files ?? [];
}

// ---------------------------------------------------------------------------------------------------
// Mean ± std over repeats.

export interface SweepGroup {
  /** The configuration: the varied keys other than the repeats'. */
  params: Record<string, unknown>;
  experiments: string[];
  stats: Record<string, { mean: number; std?: number; n: number }>;
}

/** Group rows by configuration (their params minus the repeat keys), in first-seen order. */
export function groupRows(rows: SweepRow[], repeatKeys: string[]): SweepGroup[] {
  const groups = new Map<string, { params: Record<string, unknown>; rows: SweepRow[] }>();
  for (const row of rows) {
    const params = Object.fromEntries(Object.entries(row.params).filter(([k]) => !repeatKeys.includes(k)));
    const key = JSON.stringify(Object.entries(params).sort());
    const g = groups.get(key) ?? { params, rows: [] };
    g.rows.push(row);
    groups.set(key, g);
  }
  return [...groups.values()].map((g) => {
    const metrics = [...new Set(g.rows.flatMap((r) => Object.keys(r.metrics)))].sort();
    const stats: SweepGroup['stats'] = {};
    for (const m of metrics) {
      const xs = g.rows.map((r) => r.metrics[m]).filter((x): x is number => typeof x === 'number');
      if (xs.length === 0) continue;
      const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
      let std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : undefined;
      // Equal values summed in floating point leave a spread of ~1e-16: that is no spread.
      if (std !== undefined && std < 1e-12 * Math.max(1, Math.abs(mean))) std = 0;
      stats[m] = { mean, ...(std !== undefined ? { std } : {}), n: xs.length };
    }
    return { params: g.params, experiments: g.rows.map((r) => r.experiment), stats };
  });
}
