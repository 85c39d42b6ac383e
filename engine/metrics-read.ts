// Metrics and params as flat (dotted key -> value) maps, from three places: the workspace's metrics outs
// (files), a pipeline.lock at a git revision (its metrics outs read from the cache by content hash), and
// the params a lock recorded. `metrics diff`, `params diff` and the experiment records all use these.
//
//   {"test": {"accuracy": 0.93}, "loss": 0.2}  --flatten-->  {"test.accuracy": 0.93, "loss": 0.2}

import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import * as yaml from 'js-yaml';
import { Cache } from './cache.ts';
import { PipelineError } from './failure.ts';
import type { Graph } from './graph.ts';
import { LOCK_FILE, type LockFile } from './lockfile.ts';

/** Every number in a JSON document, under its dotted key; everything else (strings, lists) is left out. */
export function flattenNumbers(doc: unknown, prefix = '', out: Record<string, number> = {}): Record<string, number> {
  if (typeof doc === 'number' && Number.isFinite(doc)) out[prefix || 'value'] = doc;
  else if (typeof doc === 'object' && doc !== null && !Array.isArray(doc)) {
    for (const [k, v] of Object.entries(doc)) flattenNumbers(v, prefix ? `${prefix}.${k}` : k, out);
  }
  return out;
}

/** The paths of the outs whose role is `metrics`, in stage order. */
export function metricsPaths(graph: Graph): string[] {
  return graph.stages.flatMap((s) => s.outs.filter((o) => o.role === 'metrics').map((o) => o.path));
}

/**
 * One flat map from several metrics files. Keys stay as the files wrote them; only a key two files share
 * is qualified with its file (`artifacts/eval.json:loss`), so adding a second file renames nothing else.
 */
export function mergeMetrics(perFile: Record<string, Record<string, number>>): Record<string, number> {
  const count = new Map<string, number>();
  for (const m of Object.values(perFile)) for (const k of Object.keys(m)) count.set(k, (count.get(k) ?? 0) + 1);
  const out: Record<string, number> = {};
  for (const [file, m] of Object.entries(perFile))
    for (const [k, v] of Object.entries(m)) out[(count.get(k) ?? 0) > 1 ? `${file}:${k}` : k] = v;
  return out;
}

function parseMetrics(text: string, where: string): Record<string, number> {
  try {
    return flattenNumbers(JSON.parse(text));
  } catch (e) {
    throw new PipelineError({
      reason: 'invalid-definition',
      message: `metrics file ${where} is not JSON: ${(e as Error).message}`,
    });
  }
}

/** The metrics files under `root` (a workspace or an experiment's), flattened; absent files are skipped. */
export function readWorkspaceMetrics(root: string, paths: string[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const p of paths) {
    const abs = path.join(root, p);
    if (!existsSync(abs) || !statSync(abs).isFile()) continue;
    out[p] = parseMetrics(readFileSync(abs, 'utf8'), p);
  }
  return out;
}

/** pipeline.lock as committed at `rev` (`git show REV:./pipeline.lock`, relative to the project root). */
export async function lockAtRevision(root: string, rev: string): Promise<LockFile> {
  const r = await execa('git', ['show', `${rev}:./${LOCK_FILE}`], { cwd: root, reject: false });
  if (r.exitCode !== 0) {
    const why = r.stderr.trim().split('\n')[0] || `git exited with ${r.exitCode}`;
    throw new PipelineError({
      reason: 'invalid-definition',
      message: `cannot read ${LOCK_FILE} at '${rev}': ${why}. Is this a git repository, and was the lock committed there?`,
    });
  }
  try {
    const doc = (yaml.load(r.stdout) ?? {}) as Partial<LockFile>;
    return { schema: doc.schema ?? 1, stages: doc.stages ?? {} };
  } catch (e) {
    throw new PipelineError({ reason: 'yaml', file: `${rev}:${LOCK_FILE}`, message: (e as Error).message });
  }
}

export interface LockedMetrics {
  metrics: Record<string, Record<string, number>>;
  /** Metrics outs the lock records whose object is not in the local cache. */
  missing: string[];
}

/** The metrics outs a lock records, read from the cache by their content hash. */
export function readLockedMetrics(cache: Cache, lock: LockFile, paths: string[]): LockedMetrics {
  const result: LockedMetrics = { metrics: {}, missing: [] };
  for (const p of paths) {
    const rec = Object.values(lock.stages).find((e) => e.outs?.[p])?.outs[p];
    if (!rec?.hash || rec.files !== undefined) continue; // never produced there, or a folder
    const file = cache.path(Cache.objectKey(rec.hash));
    if (!existsSync(file)) result.missing.push(p);
    else result.metrics[p] = parseMetrics(readFileSync(file, 'utf8'), `${p}@${rec.hash.slice(0, 8)}`);
  }
  return result;
}

/** Every param a lock recorded, over all its stages (a key two stages read has one value). */
export function lockParams(lock: LockFile): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const e of Object.values(lock.stages)) Object.assign(out, e.params ?? {});
  return sortKeys(out);
}

export const sortKeys = <T>(o: Record<string, T>): Record<string, T> =>
  Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

export interface ValueChange {
  key: string;
  old: unknown;
  new: unknown;
  /** new - old, when both are numbers. */
  delta?: number;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Key-by-key comparison of two flat maps: the keys that differ (or, with `all`, every key). */
export function compareFlat(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  all = false,
): ValueChange[] {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  const out: ValueChange[] = [];
  for (const key of keys) {
    const [a, b] = [before[key], after[key]];
    if (!all && same(a, b)) continue;
    const change: ValueChange = { key, old: a, new: b };
    if (typeof a === 'number' && typeof b === 'number') change.delta = b - a;
    out.push(change);
  }
  return out;
}
