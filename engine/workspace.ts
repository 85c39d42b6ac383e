// A workspace: the project root with its pipeline, config, graph, lock and caches, opened once per command.

import path from 'node:path';
import { Cache } from './cache.ts';
import { type Config, interpolate, loadConfig } from './config.ts';
import { Fingerprinter } from './fingerprint.ts';
import { buildGraph, type Graph, type GraphStage } from './graph.ts';
import { Hasher } from './hashing.ts';
import { type LockFile, type PathRecord, readLock } from './lockfile.ts';
import { StatCache } from './stat-cache.ts';
import { diffListings, explain, type Reason, type StageState, stateOf } from './status.ts';
import type { Pipeline } from './types.ts';

export interface WorkspaceOptions {
  root: string;
  pipeline: Pipeline;
  configName?: string;
  sets?: string[];
}

export interface Workspace {
  root: string;
  pipeline: Pipeline;
  config: Config;
  graph: Graph;
  lock: LockFile;
  statCache: StatCache;
  fingerprinter: Fingerprinter;
  cache: Cache;
}

export function openWorkspace(opts: WorkspaceOptions): Workspace {
  const root = path.resolve(opts.root);
  const config = loadConfig(root, opts.configName, opts.sets);
  const graph = buildGraph(root, opts.pipeline);
  const statCache = new StatCache(path.join(root, '.pipeline', 'stat-cache.json'));
  const fingerprinter = new Fingerprinter(root, new Hasher(root, statCache), config.tree);
  // Unknown param keys are definition errors: find them before anything runs.
  for (const s of graph.stages) {
    const params = fingerprinter.params(s);
    if (s.stage.cmd !== undefined) interpolate(s.stage.cmd, params, s.name);
  }
  return {
    root,
    pipeline: opts.pipeline,
    config,
    graph,
    lock: readLock(root),
    statCache,
    fingerprinter,
    cache: new Cache(root),
  };
}

export interface StageStatus {
  name: string;
  state: StageState;
  reasons: Reason[];
  /** Stale, but its current fingerprint was seen before: `run` restores its outs from the cache. */
  restorable?: boolean;
}

/**
 * Status of `stages` (topological order). A stage whose upstream is not fresh is stale too
 * (`upstream stale: X`), since its inputs are about to change.
 */
export async function computeStatus(ws: Workspace, stages: GraphStage[]): Promise<StageStatus[]> {
  const fp = ws.fingerprinter;
  await fp.loadCodeDeps(stages);
  await fp.hash(stages.flatMap((s) => fp.pathsOf(s)));
  const byName = new Map<string, StageStatus>();
  for (const s of stages) {
    const { fingerprint, outs } = await fp.compute(s);
    const reasons = explain(ws.lock.stages[s.name], fingerprint, outs);
    for (const r of reasons) {
      if (r.kind !== 'dep' || r.change !== 'modified') continue;
      const old = ws.lock.stages[s.name]?.deps[r.path]?.hash;
      const before = old ? ws.cache.readListing(old) : undefined;
      const now = (await fp.hash([r.path])).get(r.path)?.listing;
      if (before && now) r.files = diffListings(before, now());
    }
    for (const up of s.upstream) {
      const u = byName.get(up);
      if (u && u.state !== 'fresh') reasons.push({ kind: 'upstream', path: up, stage: up });
    }
    const status: StageStatus = { name: s.name, state: stateOf(reasons), reasons };
    if (reasons.length > 0 && s.stage.runCache !== false && !reasons.some((r) => r.kind === 'upstream')) {
      const entry = ws.cache.runFor(
        s.name,
        fingerprint.fingerprint,
        s.outs.map((o) => o.path),
      );
      if (entry && ws.cache.hasOuts(entry.outs)) status.restorable = true;
    }
    byName.set(s.name, status);
  }
  ws.statCache.save();
  return stages.map((s) => byName.get(s.name) as StageStatus);
}

/**
 * Restore an out from the cache, and record its known hashes so the next status reads none of the
 * files just written.
 */
export async function restoreOut(ws: Workspace, rel: string, rec: PathRecord): Promise<void> {
  await ws.cache.restoreOut(rel, rec);
  if (!rec.hash) return;
  const manifest = rec.files !== undefined ? ws.cache.readManifest(rec.hash) : undefined;
  ws.fingerprinter.hasher.remember(rel, { hash: rec.hash, files: manifest?.map(([n, h]) => [n, h]) });
}
