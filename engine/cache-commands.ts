// The cache's commands: checkout, gc, push / pull / fetch, status --remote, remote add / list / remove.
// Each returns data; cli.ts prints it and picks the exit code.

import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import * as yaml from 'js-yaml';
import { Cache, CorruptObjectError } from './cache.ts';
import type { Logger } from './events.ts';
import { PipelineError } from './failure.ts';
import { selectStages } from './graph.ts';
import type { LockFile } from './lockfile.ts';
import { type Remote, type RemoteConfig, readProjectConfig, writeProjectConfig } from './remote.ts';
import { fetchOuts, keysForEntry, push, type TransferResult } from './transfer.ts';
import { restoreOut, type Workspace } from './workspace.ts';

/** Stages selected by name (default all) that have a lock entry. */
function lockedStages(ws: Workspace, targets: string[]): string[] {
  return selectStages(ws.graph, targets)
    .map((s) => s.name as string)
    .filter((n) => ws.lock.stages[n]);
}

export interface CheckoutResult {
  restored: string[];
  unchanged: string[];
  failed: Array<{ path: string; error: string }>;
}

/** Make the workspace's outs match pipeline.lock, from the cache. */
export async function checkout(ws: Workspace, targets: string[]): Promise<CheckoutResult> {
  const result: CheckoutResult = { restored: [], unchanged: [], failed: [] };
  for (const name of lockedStages(ws, targets)) {
    const entry = ws.lock.stages[name];
    const current = await ws.fingerprinter.hash(Object.keys(entry.outs));
    for (const [p, rec] of Object.entries(entry.outs)) {
      if (current.get(p)?.hash === rec.hash) {
        result.unchanged.push(p);
        continue;
      }
      try {
        if (!ws.cache.hasOuts({ [p]: rec })) throw new Error('not in the cache: `pipeline pull` it, or `pipeline run`');
        await restoreOut(ws, p, rec);
        result.restored.push(p);
      } catch (e) {
        result.failed.push({
          path: p,
          error: e instanceof CorruptObjectError ? `${e.message}; pull or rerun it` : (e as Error).message,
        });
      }
    }
  }
  ws.statCache.save();
  return result;
}

export interface GcOptions {
  dryRun: boolean;
  /** Keep the newest N run entries per stage (default: all from the last 30 days). */
  keepRuns?: number;
  /** Also keep what every committed pipeline.lock in the git history needs. */
  allCommits: boolean;
}

export interface GcResult {
  removed: number;
  bytes: number;
  kept: number;
  runsRemoved: number;
}

async function historicLocks(root: string): Promise<LockFile[]> {
  const revs = await execa('git', ['log', '--format=%H', '--', 'pipeline.lock'], { cwd: root, reject: false });
  if (revs.exitCode !== 0) {
    throw new PipelineError({
      reason: 'invalid-definition',
      message: `--all-commits needs a git repository: ${revs.stderr.trim()}`,
    });
  }
  const locks: LockFile[] = [];
  for (const rev of revs.stdout.split('\n').filter(Boolean)) {
    const text = await execa('git', ['show', `${rev}:pipeline.lock`], { cwd: root, reject: false });
    if (text.exitCode === 0) locks.push((yaml.load(text.stdout) ?? { stages: {} }) as LockFile);
  }
  return locks;
}

/** Remove cache objects nothing we keep refers to. */
export async function gc(ws: Workspace, opts: GcOptions): Promise<GcResult> {
  const cache = ws.cache;
  const keep = new Set<string>();
  const keepOuts = (outs: Record<string, { hash: string | null; files?: number }>) => {
    for (const rec of Object.values(outs)) {
      try {
        for (const k of cache.keysFor(rec as never) ?? []) keep.add(k);
      } catch {
        // a corrupt manifest keeps nothing
      }
    }
  };
  const keepEntry = (e: {
    outs: Record<string, { hash: string | null; files?: number }>;
    deps?: Record<string, { hash: string | null }>;
  }) => {
    keepOuts(e.outs);
    for (const d of Object.values(e.deps ?? {})) if (d.hash) keep.add(`listings/${d.hash}.json`);
  };
  for (const entry of Object.values(ws.lock.stages)) keepEntry(entry);
  if (opts.allCommits)
    for (const lock of await historicLocks(ws.root)) for (const e of Object.values(lock.stages ?? {})) keepEntry(e);

  const monthAgo = Date.now() - 30 * 24 * 3600 * 1000;
  const byStage = new Map<string, ReturnType<Cache['listRuns']>>();
  for (const r of cache.listRuns()) byStage.set(r.stage, [...(byStage.get(r.stage) ?? []), r]);
  let runsRemoved = 0;
  for (const [stage, runs] of byStage) {
    runs.sort((a, b) => b.created.localeCompare(a.created));
    const lockFp = ws.lock.stages[stage]?.fingerprint;
    runs.forEach((r, i) => {
      const kept =
        r.fingerprint === lockFp ||
        (opts.keepRuns !== undefined ? i < opts.keepRuns : Date.parse(r.created) >= monthAgo);
      if (kept) {
        keep.add(Cache.runKey(stage, r.fingerprint));
        keepOuts(r.outs);
      } else {
        runsRemoved++;
        if (!opts.dryRun) rmSync(cache.path(Cache.runKey(stage, r.fingerprint)), { force: true });
      }
    });
  }

  let removed = 0;
  let bytes = 0;
  for (const sub of ['objects', 'dirs', 'listings']) {
    const base = cache.path(sub);
    if (!existsSync(base)) continue;
    const walk = (abs: string, rel: string) => {
      for (const name of readdirSync(abs)) {
        const childAbs = path.join(abs, name);
        const key = `${rel}/${name}`;
        const st = statSync(childAbs);
        if (st.isDirectory()) walk(childAbs, key);
        else if (!keep.has(key)) {
          removed++;
          bytes += st.size;
          if (!opts.dryRun) rmSync(childAbs, { force: true });
        }
      }
    };
    walk(base, sub);
  }
  return { removed, bytes, kept: keep.size, runsRemoved };
}

/** The keys the selected stages' lock entries need, and the outs whose objects are not in the cache. */
function wanted(ws: Workspace, targets: string[]): { keys: string[]; missing: string[] } {
  const keys: string[] = [];
  const missing: string[] = [];
  for (const name of lockedStages(ws, targets)) {
    const r = keysForEntry(ws.cache, name, ws.lock.stages[name]);
    keys.push(...r.keys);
    missing.push(...r.missing);
  }
  // Push order across stages too: every object before any manifest, every manifest before any run.
  const rank = (k: string) => (k.startsWith('objects/') ? 0 : k.startsWith('dirs/') ? 1 : 2);
  return { keys: [...new Set(keys)].sort((a, b) => rank(a) - rank(b)), missing };
}

export async function pushCommand(
  ws: Workspace,
  remote: Remote,
  targets: string[],
  opts: { jobs: number; emit: Logger; signal: AbortSignal },
): Promise<TransferResult & { notCached: string[] }> {
  const { keys, missing } = wanted(ws, targets);
  const present = keys.filter((k) => k.startsWith('runs/') || ws.cache.has(k));
  return { ...(await push(ws.cache, remote, present, opts)), notCached: missing };
}

export async function fetchCommand(
  ws: Workspace,
  remote: Remote,
  targets: string[],
  opts: { jobs: number; emit: Logger; signal: AbortSignal },
): Promise<TransferResult> {
  const outs = lockedStages(ws, targets).map((n) => ws.lock.stages[n].outs);
  return fetchOuts(ws.cache, remote, outs, opts);
}

export interface RemoteStatusRow {
  stage: string;
  local: number;
  remote: number;
  total: number;
}

/** For each stage: how many of the objects its lock entry needs are local, and on the remote. */
export async function remoteStatus(ws: Workspace, remote: Remote, targets: string[]): Promise<RemoteStatusRow[]> {
  const rows: RemoteStatusRow[] = [];
  for (const name of lockedStages(ws, targets)) {
    const { keys } = keysForEntry(ws.cache, name, ws.lock.stages[name]);
    const objects = keys.filter((k) => !k.startsWith('runs/'));
    const onRemote = await remote.has(objects);
    rows.push({
      stage: name,
      local: objects.filter((k) => ws.cache.has(k)).length,
      remote: onRemote.size,
      total: objects.length,
    });
  }
  return rows;
}

export function remoteAdd(root: string, name: string, rc: RemoteConfig, makeDefault: boolean): void {
  if (!/^[A-Za-z][\w-]*$/.test(name)) {
    throw new PipelineError({
      reason: 'invalid-definition',
      message: `remote name '${name}' is invalid: letters, digits, - and _`,
    });
  }
  if (!rc.url.startsWith('s3://') && !rc.url.startsWith('file://') && /^[a-z]+:\/\//.test(rc.url)) {
    throw new PipelineError({
      reason: 'invalid-definition',
      message: `unsupported remote URL '${rc.url}': use a folder path, file://… or s3://bucket/prefix`,
    });
  }
  const config = readProjectConfig(root);
  config.remotes[name] = Object.fromEntries(Object.entries(rc).filter(([, v]) => v !== undefined)) as RemoteConfig;
  if (makeDefault || !config.default) config.default = name;
  writeProjectConfig(root, config);
}

export function remoteRemove(root: string, name: string): void {
  const config = readProjectConfig(root);
  if (!config.remotes[name]) {
    throw new PipelineError({ reason: 'invalid-definition', message: `no remote named '${name}'` });
  }
  delete config.remotes[name];
  if (config.default === name) config.default = Object.keys(config.remotes)[0];
  writeProjectConfig(root, config);
}
