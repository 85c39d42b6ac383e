// Reading experiments back: the `exp show` table (only the params that differ between them), `exp diff`
// of two, and `exp apply` (an experiment's overrides written into its config file, comments kept).

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isMap, parseDocument } from 'yaml';
import { loadConfig, nearest } from './config.ts';
import { type ExperimentRecord, flatParams } from './experiments.ts';
import { PipelineError } from './failure.ts';
import { compareFlat, type ValueChange } from './metrics-read.ts';

export interface ShowRow {
  name: string;
  status: ExperimentRecord['status'];
  created: string;
  sweep?: string;
  params: Record<string, unknown>;
  metrics: Record<string, number>;
}

export interface ShowTable {
  /** Param columns: the keys whose values differ between the experiments shown. */
  params: string[];
  metrics: string[];
  rows: ShowRow[];
}

export interface ShowOptions {
  sort?: string;
  descending: boolean;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

function compareValues(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return JSON.stringify(a).localeCompare(JSON.stringify(b), undefined, { numeric: true });
}

export function showTable(records: ExperimentRecord[], opts: ShowOptions): ShowTable {
  const flat = records.map((r) => ({ r, params: flatParams(r) }));
  const allKeys = [...new Set(flat.flatMap((f) => Object.keys(f.params)))].sort();
  let params = allKeys.filter((k) => flat.some((f) => !same(f.params[k], flat[0].params[k])));
  // One experiment (or all alike): what it set is what is worth seeing.
  if (params.length === 0) params = [...new Set(records.flatMap((r) => Object.keys(r.overrides)))].sort();
  const metrics = [...new Set(records.flatMap((r) => Object.keys(r.metrics)))].sort();
  let rows: ShowRow[] = flat.map(({ r, params: p }) => ({
    name: r.name,
    status: r.status,
    created: r.created,
    ...(r.sweep ? { sweep: r.sweep } : {}),
    params: Object.fromEntries(params.map((k) => [k, k in p ? p[k] : r.overrides[k]])),
    metrics: r.metrics,
  }));
  if (opts.sort) {
    const key = opts.sort;
    const fixed: Record<string, (row: ShowRow) => unknown> = {
      name: (row) => row.name,
      created: (row) => row.created,
      status: (row) => row.status,
    };
    const known = [...Object.keys(fixed), ...metrics, ...allKeys];
    if (!known.includes(key)) {
      const hint = nearest(key, known);
      throw new PipelineError({
        reason: 'invalid-definition',
        message: `cannot sort by '${key}': no experiment has that metric or param.${hint ? ` Did you mean '${hint}'?` : ''} Metrics: ${metrics.join(', ') || 'none'}`,
      });
    }
    const byParam = new Map(flat.map((f) => [f.r.name, f.params]));
    const get =
      fixed[key] ?? ((row: ShowRow) => (key in row.metrics ? row.metrics[key] : byParam.get(row.name)?.[key]));
    const sign = opts.descending ? -1 : 1;
    // Experiments without the key go last, whichever the order.
    rows = [...rows].sort((a, b) => {
      const [x, y] = [get(a), get(b)];
      if (x === undefined || y === undefined) return x === undefined ? (y === undefined ? 0 : 1) : -1;
      return sign * compareValues(x, y);
    });
  }
  return { params, metrics, rows };
}

export interface ExpDiff {
  a: string;
  b: string;
  params: ValueChange[];
  metrics: ValueChange[];
}

/** What differs between two experiments: params (as their stages read them) and metrics. */
export function diffExperiments(a: ExperimentRecord, b: ExperimentRecord, all = false): ExpDiff {
  return {
    a: a.name,
    b: b.name,
    params: compareFlat(flatParams(a), flatParams(b), all),
    metrics: compareFlat(a.metrics, b.metrics, all),
  };
}

export interface ApplyResult {
  file: string;
  changed: Array<{ key: string; old: unknown; new: unknown }>;
}

/**
 * Write an experiment's overrides into `configs/<its config>.yaml` with the `yaml` package, which keeps
 * comments, order and formatting of everything it does not touch. Checked afterwards: the config must
 * then resolve every overridden key to the experiment's value.
 */
export function applyExperiment(root: string, rec: ExperimentRecord): ApplyResult {
  const rel = `configs/${rec.configName}.yaml`;
  const file = path.join(root, rel);
  const doc = parseDocument(existsSync(file) ? readFileSync(file, 'utf8') : '');
  if (doc.errors.length > 0) {
    throw new PipelineError({
      reason: 'yaml',
      file: rel,
      line: doc.errors[0].linePos?.[0].line,
      message: doc.errors[0].message.split('\n')[0],
    });
  }
  if (doc.contents !== null && !isMap(doc.contents)) {
    throw new PipelineError({ reason: 'yaml', file: rel, message: 'the top level must be a mapping of keys' });
  }
  const before = existsSync(file) ? loadConfig(root, rec.configName).tree : {};
  const changed: ApplyResult['changed'] = [];
  for (const [key, value] of Object.entries(rec.overrides)) {
    const old = key.split('.').reduce<unknown>((n, k) => (n as Record<string, unknown> | undefined)?.[k], before);
    if (same(old, value)) continue;
    // A scalar is set in place, so a comment on its line stays; a list or mapping is written in flow style.
    const scalar = value === null || typeof value !== 'object';
    doc.setIn(key.split('.'), scalar ? value : doc.createNode(value, { flow: true }));
    changed.push({ key, old, new: value });
  }
  if (changed.length > 0) writeFileSync(file, doc.toString({ flowCollectionPadding: false, lineWidth: 0 }));
  const after = loadConfig(root, rec.configName).tree;
  for (const [key, value] of Object.entries(rec.overrides)) {
    const now = key.split('.').reduce<unknown>((n, k) => (n as Record<string, unknown> | undefined)?.[k], after);
    if (!same(now, value)) {
      throw new PipelineError({
        reason: 'invalid-definition',
        message: `${rel} still resolves '${key}' to ${JSON.stringify(now)} after the edit (an 'extends' chain?); set it to ${JSON.stringify(value)} by hand`,
      });
    }
  }
  return { file: rel, changed };
}
