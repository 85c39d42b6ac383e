// Experiments: the pipeline run with overrides in a workspace of its own (exp-workspace.ts), recorded in
// `.pipeline/experiments/<name>.json`. The run is the real CLI in a child process (`run --json`), so
// experiments run in parallel as processes and anything `run` can do, an experiment can.
//
//   overrides --make ws--> .pipeline/exp/ws-<name>/ --child: run --set ... --json--> events
//                                                                               \--> record (params from
//   the ws's pipeline.lock, metrics from its metrics outs, per-stage outcome) --> remove ws

import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as yaml from 'js-yaml';
import { nearest } from './config.ts';
import type { Event, StageOutcome } from './events.ts';
import { makeExpWorkspace, removeExpWorkspace, unsharedStages } from './exp-workspace.ts';
import { describeFailure, PipelineError } from './failure.ts';
import type { Graph } from './graph.ts';
import { type PathRecord, readLock } from './lockfile.ts';
import { mergeMetrics, metricsPaths, readWorkspaceMetrics, sortKeys } from './metrics-read.ts';
import type { ContentHash, Pipeline } from './types.ts';

const TSX_LOADER = fileURLToPath(import.meta.resolve('tsx'));
const NAME = /^[A-Za-z0-9][\w.-]*$/;

export interface ExperimentStage {
  outcome: StageOutcome;
  seconds: number;
  /** From the experiment's lock: its run-cache key, and its outs' hashes (restorable from the cache). */
  fingerprint?: ContentHash;
  outs?: Record<string, PathRecord>;
}

export interface ExperimentRecord {
  name: string;
  /** The sweep that made it, and its place there. */
  sweep?: string;
  index?: number;
  configName: string;
  /** As given to `run --set` (`train.lr=0.01`, `+extra.key=1`). */
  sets: string[];
  /** The same, parsed: dotted key -> value. */
  overrides: Record<string, unknown>;
  targets: string[];
  created: string;
  seconds: number;
  status: 'success' | 'failed';
  error?: string;
  /** Stage -> (config key -> value) as the experiment's lock recorded them. */
  params: Record<string, Record<string, unknown>>;
  stages: Record<string, ExperimentStage>;
  /** Every metrics out, flattened (`test.accuracy`). */
  metrics: Record<string, number>;
  /** Set when the workspace was kept (`--keep`). */
  workspace?: string;
  /** A failed experiment's stage logs, kept (`.pipeline/experiments/logs/<name>`). */
  logs?: string;
  /** Where its report outs were copied (`reports/<name>`). */
  reports?: string[];
}

// ---------------------------------------------------------------------------------------------------
// The store: one JSON file per experiment.

export const experimentsDir = (root: string) => path.join(root, '.pipeline', 'experiments');
const recordFile = (root: string, name: string) => path.join(experimentsDir(root), `${name}.json`);

export function checkName(name: string): void {
  if (!NAME.test(name)) {
    throw new PipelineError({
      reason: 'invalid-definition',
      message: `experiment name '${name}' is invalid: letters, digits, '.', '-' and '_', starting with a letter or digit`,
    });
  }
}

export function writeAtomic(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

export function saveExperiment(root: string, rec: ExperimentRecord): void {
  writeAtomic(recordFile(root, rec.name), `${JSON.stringify(rec, null, 2)}\n`);
}

export function readExperiment(root: string, name: string): ExperimentRecord | undefined {
  try {
    return JSON.parse(readFileSync(recordFile(root, name), 'utf8'));
  } catch {
    return undefined;
  }
}

/** Every recorded experiment, oldest first. */
export function listExperiments(root: string): ExperimentRecord[] {
  const dir = experimentsDir(root);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => readExperiment(root, f.slice(0, -5)))
    .filter((r): r is ExperimentRecord => r !== undefined)
    .sort((a, b) => a.created.localeCompare(b.created) || a.name.localeCompare(b.name));
}

/** The named experiment, or an error that lists the known ones. */
export function getExperiment(root: string, name: string): ExperimentRecord {
  const rec = readExperiment(root, name);
  if (rec) return rec;
  const known = listExperiments(root).map((r) => r.name);
  const hint = nearest(name, known);
  throw new PipelineError({
    reason: 'invalid-definition',
    message:
      known.length === 0
        ? `no experiment named '${name}': none recorded yet (\`pipeline exp run --set key=value\`)`
        : `no experiment named '${name}'.${hint ? ` Did you mean '${hint}'?` : ''} Known: ${known.join(', ')}`,
  });
}

// ---------------------------------------------------------------------------------------------------
// Overrides and names.

/** `key=value` / `+key=value` -> (key, parsed value); config.ts validates them when the config loads. */
export function parseSets(sets: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const arg of sets) {
    const eq = arg.indexOf('=');
    if (eq <= 0) throw new PipelineError({ reason: 'bad-set', arg, message: "expected '='" });
    let value: unknown;
    try {
      value = yaml.load(arg.slice(eq + 1)) ?? null;
    } catch {
      value = arg.slice(eq + 1);
    }
    out[arg.slice(arg.startsWith('+') ? 1 : 0, eq).trim()] = value;
  }
  return sortKeys(out);
}

/** A value as a `--set` argument: JSON is YAML, so it reads back as the same value. */
export const toSet = (key: string, value: unknown) => `${key}=${JSON.stringify(value)}`;

/** What makes two experiments the same: the config and the overrides (order aside). */
export const identity = (configName: string, overrides: Record<string, unknown>, targets: string[] = []) =>
  JSON.stringify([configName, sortKeys(overrides), [...targets].sort()]);

/** `exp-` + a short hash of the overrides: running the same overrides again names the same experiment. */
export function generatedName(configName: string, overrides: Record<string, unknown>, targets: string[]): string {
  return `exp-${createHash('sha256')
    .update(identity(configName, overrides, targets))
    .digest('hex')
    .slice(0, 7)}`;
}

// ---------------------------------------------------------------------------------------------------
// Running one.

/** What the experiment runner says; cli-exp.ts renders it. `run-event`: the child run's own events. */
export type ExpEvent =
  | { type: 'exp-start'; name: string; overrides: Record<string, unknown> }
  | { type: 'exp-run-event'; name: string; event: Event }
  | { type: 'exp-done'; name: string; record: ExperimentRecord }
  | { type: 'exp-interrupted'; name: string }
  | { type: 'exp-warning'; message: string };

export interface RunExperimentOptions {
  root: string;
  pipeline: Pipeline;
  graph: Graph;
  name: string;
  configName: string;
  sets: string[];
  targets: string[];
  sweep?: string;
  index?: number;
  /** Keep the workspace afterwards (it is recorded in the experiment). */
  keep: boolean;
  /** Aborting sends SIGINT to the child run, which stops its stages and records nothing for them. */
  signal: AbortSignal;
  emit: (e: ExpEvent) => void;
  /** Extra environment for the child run. */
  env?: Record<string, string>;
}

export interface ExperimentResult {
  /** Undefined when interrupted: nothing is recorded. */
  record?: ExperimentRecord;
  interrupted: boolean;
  /** The child run's exit code. */
  exitCode: number;
}

export async function runExperiment(opts: RunExperimentOptions): Promise<ExperimentResult> {
  const started = Date.now();
  const { name, emit } = opts;
  const overrides = parseSets(opts.sets);
  emit({ type: 'exp-start', name, overrides });
  if (opts.signal.aborted) {
    emit({ type: 'exp-interrupted', name });
    return { interrupted: true, exitCode: 130 };
  }
  const dir = await makeExpWorkspace({ root: opts.root, name, graph: opts.graph });
  try {
    const { execa } = await import('execa');
    const pipelineFile = path.relative(opts.root, opts.pipeline.file);
    const args = ['--import', TSX_LOADER, pipelineFile, 'run', '--json', '--config-name', opts.configName];
    for (const s of opts.sets) args.push('--set', s);
    args.push(...opts.targets);
    const child = execa(process.execPath, args, {
      cwd: dir,
      reject: false,
      stdin: 'ignore',
      buffer: { stdout: false, stderr: true },
      env: { ...opts.env, PIPELINE_EXPERIMENT: name },
    });
    const onAbort = () => child.kill('SIGINT');
    opts.signal.addEventListener('abort', onAbort, { once: true });

    let summary: Extract<Event, { type: 'run-summary' }> | undefined;
    let firstFailure: string | undefined;
    if (child.stdout) {
      for await (const line of createInterface({ input: child.stdout })) {
        let event: Event;
        try {
          event = JSON.parse(line);
        } catch {
          continue; // a stray line from a stage module's top level
        }
        if (event.type === 'run-summary') summary = event;
        if (event.type === 'stage-failure' && !firstFailure) firstFailure = describeFailure(event.failure);
        emit({ type: 'exp-run-event', name, event });
      }
    }
    const result = await child;
    opts.signal.removeEventListener('abort', onAbort);
    const exitCode = result.exitCode ?? (result.signal ? 130 : 1);
    if (opts.signal.aborted || exitCode === 130 || summary?.interrupted) {
      emit({ type: 'exp-interrupted', name });
      return { interrupted: true, exitCode: 130 };
    }

    const lock = readLock(dir);
    const params: ExperimentRecord['params'] = {};
    const stages: ExperimentRecord['stages'] = {};
    for (const s of summary?.stages ?? []) {
      const entry = lock.stages[s.name];
      const done = ['ran', 'restored', 'fresh'].includes(s.outcome);
      stages[s.name] = {
        outcome: s.outcome,
        seconds: Math.round(s.seconds * 1000) / 1000,
        ...(done && entry ? { fingerprint: entry.fingerprint, outs: entry.outs } : {}),
      };
      if (done && entry) params[s.name] = entry.params;
    }
    const stderr = String(result.stderr ?? '').trim();
    const failed = exitCode !== 0;
    // The stages' logs would go with the workspace: a failure's are kept beside the record.
    const logs = path.join(experimentsDir(opts.root), 'logs', name);
    rmSync(logs, { recursive: true, force: true });
    if (failed && existsSync(path.join(dir, '.pipeline', 'logs')))
      cpSync(path.join(dir, '.pipeline', 'logs'), logs, { recursive: true });
    const record: ExperimentRecord = {
      name,
      ...(opts.sweep !== undefined ? { sweep: opts.sweep, index: opts.index } : {}),
      configName: opts.configName,
      sets: opts.sets,
      overrides,
      targets: opts.targets,
      created: new Date(started).toISOString(),
      seconds: Math.round((Date.now() - started) / 10) / 100,
      status: failed ? 'failed' : 'success',
      ...(failed
        ? {
            error: firstFailure ?? (stderr.replace(/^error: /, '').split('\n')[0] || `the run exited with ${exitCode}`),
          }
        : {}),
      params,
      stages,
      metrics: mergeMetrics(readWorkspaceMetrics(dir, metricsPaths(opts.graph))),
      ...(opts.keep ? { workspace: path.relative(opts.root, dir) } : {}),
      ...(failed && existsSync(logs) ? { logs: path.relative(opts.root, logs) } : {}),
    };
    // Reports (outs with role 'report') outlive the workspace: reports/latest -> reports/<name>.
    if (!failed) {
      const copied: string[] = [];
      for (const out of opts.graph.stages.flatMap((s) => s.outs.filter((o) => o.role === 'report'))) {
        const from = path.join(dir, out.path);
        if (!existsSync(from)) continue;
        const to = path.join(path.dirname(out.path), name);
        rmSync(path.join(opts.root, to), { recursive: true, force: true });
        cpSync(from, path.join(opts.root, to), { recursive: true });
        copied.push(to);
      }
      if (copied.length > 0) record.reports = copied;
    }
    saveExperiment(opts.root, record);
    emit({ type: 'exp-done', name, record });
    return { record, interrupted: false, exitCode };
  } finally {
    if (!opts.keep) removeExpWorkspace(dir);
  }
}

/** Say which stages each experiment will have to run again whatever the run-cache holds. */
export function warnUnshared(root: string, graph: Graph, emit: (e: ExpEvent) => void): void {
  const names = unsharedStages(root, graph);
  if (names.length === 0) return;
  emit({
    type: 'exp-warning',
    message: `${names.join(', ')} never restore${names.length === 1 ? 's' : ''} from the run-cache and ${names.length === 1 ? 'has' : 'have'} no outs here: each experiment runs ${names.length === 1 ? 'it' : 'them'}; \`pipeline run ${names.join(' ')}\` first to share ${names.length === 1 ? 'it' : 'them'}`,
  });
}

/** Every param an experiment's stages read, as one flat map. */
export function flatParams(rec: ExperimentRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of Object.values(rec.params)) Object.assign(out, p);
  return sortKeys(out);
}
