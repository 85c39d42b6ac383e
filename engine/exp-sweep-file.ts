// A sweep file: YAML that expands into experiments.
//
//   name: activations
//   config: default                                optional: configs/<config>.yaml
//   base: {train.epochs: 20}                       every experiment
//   grid: {train.activation: [relu, gelu]}         cartesian product   (or list: [{...}, {...}])
//   repeats: {train.seed: [1, 2, 3]}               crossed with the rest; reports give mean ± std
//   report: stages/report/sweep-report.ts          optional; or {module, dir, options}
//
// Keys are dotted (`train.lr`) or nested mappings (`train: {lr: ...}`), flattened alike. Experiment i is
// `<name>-<i>` (1-based, zero-padded to 2+ digits): the same file names the same experiments.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { type ConfigTree, hasKey, nearest, unknownKey } from './config.ts';
import { PipelineError } from './failure.ts';

const TOP_KEYS = ['name', 'config', 'base', 'grid', 'list', 'repeats', 'report'];

export interface SweepReportSpec {
  /** A module (relative to the project) exporting `writeSweepReport(dir, name, rows, opts)`. */
  module?: string;
  /** Where the report goes, relative to the project. Default `reports/sweeps`. */
  dir: string;
  /** Passed to writeSweepReport as `opts` (with `seedKey` set to the repeats key). */
  options: Record<string, unknown>;
}

export interface SweepSpec {
  /** As given, for messages. */
  file: string;
  name: string;
  configName?: string;
  base: Record<string, unknown>;
  /** One mapping per configuration (the grid's product, or the list), before repeats. */
  points: Array<Record<string, unknown>>;
  repeatKeys: string[];
  repeats: Array<Record<string, unknown>>;
  report: SweepReportSpec;
  /** The line of each key the file mentions, for messages. */
  lines: Map<string, number>;
}

export interface SweepExperiment {
  name: string;
  index: number;
  /** Everything set: base, configuration, repeat. */
  overrides: Record<string, unknown>;
  /** What differs between the sweep's experiments: configuration and repeat. */
  varied: Record<string, unknown>;
  seed?: number;
}

const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `{train: {lr: 1}}` and `{train.lr: 1}` alike -> `{train.lr: 1}`; stops at `stop` (a list, for grids). */
function flatten(
  v: Record<string, unknown>,
  stop: (x: unknown) => boolean,
  prefix = '',
  out: Record<string, unknown> = {},
): Record<string, unknown> {
  for (const [k, x] of Object.entries(v)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isPlain(x) && !stop(x) && Object.keys(x).length > 0) flatten(x, stop, key, out);
    else out[key] = x;
  }
  return out;
}

/** Record the line of every key under `node`, dotted as `flatten` makes them. */
function collectLines(node: unknown, lc: LineCounter, prefix: string, lines: Map<string, number>): void {
  if (isSeq(node)) for (const item of node.items) collectLines(item, lc, prefix, lines);
  if (!isMap(node)) return;
  for (const pair of node.items) {
    if (!isScalar(pair.key)) continue;
    const key = prefix ? `${prefix}.${String(pair.key.value)}` : String(pair.key.value);
    const at = pair.key.range?.[0];
    if (at !== undefined && !lines.has(key)) lines.set(key, lc.linePos(at).line);
    if (isMap(pair.value)) collectLines(pair.value, lc, key, lines);
  }
}

function product(axes: Array<[string, unknown[]]>): Array<Record<string, unknown>> {
  let out: Array<Record<string, unknown>> = [{}];
  for (const [key, values] of axes) out = out.flatMap((p) => values.map((v) => ({ ...p, [key]: v })));
  return out;
}

export function parseSweepFile(file: string, root: string): SweepSpec {
  const rel = path.relative(root, path.resolve(file)) || file;
  let text: string;
  try {
    text = readFileSync(path.resolve(file), 'utf8');
  } catch (e) {
    throw new PipelineError({
      reason: 'invalid-definition',
      message: `cannot read sweep file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    });
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  const err = doc.errors[0];
  if (err) {
    const pos = err.linePos?.[0];
    throw new PipelineError({
      reason: 'yaml',
      file: rel,
      line: pos?.line,
      column: pos?.col,
      message: err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, ''),
    });
  }
  const lines = new Map<string, number>();
  collectLines(doc.contents as Node, lc, '', lines);
  const bad = (message: string, key?: string): PipelineError =>
    new PipelineError({ reason: 'yaml', file: rel, line: key ? lines.get(key) : undefined, message });

  const top = doc.toJS();
  if (!isPlain(top)) throw bad('the top level must be a mapping (name, grid or list, ...)');
  for (const k of Object.keys(top)) {
    if (TOP_KEYS.includes(k)) continue;
    const hint = nearest(k, TOP_KEYS);
    throw bad(`unknown key '${k}'${hint ? `; did you mean '${hint}'?` : ''} (keys: ${TOP_KEYS.join(', ')})`, k);
  }
  if (typeof top.name !== 'string' || !/^[A-Za-z0-9][\w.-]*$/.test(top.name))
    throw bad("'name' must be a name (letters, digits, '.', '-', '_'): it names the experiments", 'name');
  if (top.config !== undefined && typeof top.config !== 'string') throw bad("'config' must be a config name", 'config');
  if (top.grid !== undefined && top.list !== undefined) throw bad("give either 'grid' or 'list', not both", 'list');

  const section = (key: string): Record<string, unknown> => {
    const v = top[key] ?? {};
    if (!isPlain(v)) throw bad(`'${key}' must be a mapping of config keys`, key);
    return v;
  };
  const axes = (key: string): Array<[string, unknown[]]> =>
    Object.entries(flatten(section(key), () => false)).map(([k, v]) => {
      if (!Array.isArray(v) || v.length === 0)
        throw bad(`'${key}.${k}' must be a non-empty list of values`, `${key}.${k}`);
      return [k, v];
    });

  const base = flatten(section('base'), () => false);
  let points: Array<Record<string, unknown>>;
  if (top.list !== undefined) {
    if (!Array.isArray(top.list) || top.list.length === 0 || !top.list.every(isPlain))
      throw bad("'list' must be a non-empty list of mappings (config key: value)", 'list');
    points = top.list.map((p) => flatten(p as Record<string, unknown>, () => false));
  } else points = product(axes('grid'));
  const repeatAxes = axes('repeats');

  let report: SweepReportSpec = { dir: 'reports/sweeps', options: {} };
  if (typeof top.report === 'string') report.module = top.report;
  else if (isPlain(top.report)) {
    const r = top.report;
    if (r.options !== undefined && !isPlain(r.options)) throw bad("'report.options' must be a mapping", 'report');
    report = {
      module: typeof r.module === 'string' ? r.module : undefined,
      dir: typeof r.dir === 'string' ? r.dir : report.dir,
      options: (r.options as Record<string, unknown>) ?? {},
    };
  } else if (top.report !== undefined) throw bad("'report' must be a module path or a mapping", 'report');

  return {
    file: rel,
    name: top.name,
    configName: top.config as string | undefined,
    base,
    points,
    repeatKeys: repeatAxes.map(([k]) => k),
    repeats: product(repeatAxes),
    report,
    lines,
  };
}

/** Check every key against the config (nearest key suggested, with the sweep file's line). */
export function checkSweepKeys(spec: SweepSpec, tree: ConfigTree): void {
  const keys = new Set([...Object.keys(spec.base), ...spec.points.flatMap((p) => Object.keys(p)), ...spec.repeatKeys]);
  for (const key of keys) {
    if (key.startsWith('+') || hasKey(tree, key)) continue;
    const line = [...spec.lines].find(([k]) => k === key || k.endsWith(`.${key}`))?.[1];
    throw unknownKey(key, tree, `in ${spec.file}${line ? `:${line}` : ''}`);
  }
}

export function expandSweep(spec: SweepSpec): SweepExperiment[] {
  const total = spec.points.length * spec.repeats.length;
  const width = Math.max(2, String(total).length);
  const out: SweepExperiment[] = [];
  for (const point of spec.points) {
    for (const rep of spec.repeats) {
      const index = out.length + 1;
      const seedValue = spec.repeatKeys.length === 1 ? rep[spec.repeatKeys[0]] : undefined;
      out.push({
        name: `${spec.name}-${String(index).padStart(width, '0')}`,
        index,
        overrides: { ...spec.base, ...point, ...rep },
        varied: { ...point, ...rep },
        ...(typeof seedValue === 'number' ? { seed: seedValue } : {}),
      });
    }
  }
  return out;
}
