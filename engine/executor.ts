// The runner: walks the selected stages in dependency order, up to `jobs` at a time. Each stage's
// freshness is decided only once everything upstream has finished, from fresh hashes, so a stage whose
// upstream reran but produced byte-identical outs is not rerun (early cutoff).
//
//   pending --(upstream done)--> check --fresh--> done
//                                  \--stale--> backup outs -> spawn -> hash outs -> lock entry -> done
//                                                                \--fail/abort--> restore outs -> failed

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Cache } from './cache.ts';
import { interpolate, nestParams } from './config.ts';
import type { Event, Logger, StageOutcome, StageSummary } from './events.ts';
import type { Failure } from './failure.ts';
import { toRecord } from './fingerprint.ts';
import { type GraphStage, selectStages } from './graph.ts';
import { type LockEntry, writeLock } from './lockfile.ts';
import { backupOuts, discardBackup, pendingBackups, restoreOuts } from './outs-backup.ts';
import type { Remote } from './remote.ts';
import { spawnStage } from './spawn-stage.ts';
import { explain, type Reason } from './status.ts';
import { fetchKeys, fetchOuts, keysForEntry, push } from './transfer.ts';
import { computeStatus, restoreOut, type Workspace } from './workspace.ts';

export interface RunOptions {
  targets: string[];
  jobs: number;
  force: boolean;
  dryRun: boolean;
  keepGoing: boolean;
  downstream: boolean;
  signal: AbortSignal;
  emit: Logger;
  /** Restore a stale stage's outs from the run-cache when its fingerprint was seen before. */
  runCache: boolean;
  /** With `runCache`: also look in this remote's run-cache (`run --pull`). */
  pullFrom?: Remote;
  /** Upload each stage's outs and run entry here after it succeeds (`run --push`). */
  pushTo?: Remote;
  /**
   * A signal of one stage's own (`watch`: its inputs changed while it ran). Aborting it stops that stage
   * as Ctrl-C would (nothing recorded, outs put back); stages running beside it go on.
   */
  stageSignal?: (stage: string) => AbortSignal;
}

export interface RunResult {
  stages: StageSummary[];
  interrupted: boolean;
  failed: boolean;
}

/**
 * Satisfy a stage from the run-cache: its current fingerprint was seen before (locally, or on the
 * remote with --pull), so its outs are known and restored instead of recomputed. Any problem (a corrupt
 * object, a missing one) makes this a miss: the stage then simply runs.
 */
async function restoreFromRunCache(
  ws: Workspace,
  stage: string,
  fingerprint: string,
  outPaths: string[],
  opts: RunOptions,
): Promise<{ outs: LockEntry['outs']; from: 'cache' | 'remote' } | undefined> {
  const transfer = { jobs: 8, emit: opts.emit, signal: opts.signal };
  let from: 'cache' | 'remote' = 'cache';
  let entry = ws.cache.runFor(stage, fingerprint, outPaths);
  if (!entry && opts.pullFrom) {
    const key = Cache.runKey(stage, fingerprint);
    if ((await opts.pullFrom.has([key])).has(key)) {
      await fetchKeys(ws.cache, opts.pullFrom, [key], transfer);
      entry = ws.cache.runFor(stage, fingerprint, outPaths);
      from = 'remote';
    }
  }
  if (!entry) return undefined;
  try {
    if (!ws.cache.hasOuts(entry.outs) && opts.pullFrom) {
      const r = await fetchOuts(ws.cache, opts.pullFrom, [entry.outs], transfer);
      if (r.transferred > 0) from = 'remote';
    }
    if (!ws.cache.hasOuts(entry.outs)) return undefined;
    backupOuts(ws.root, stage, outPaths);
    try {
      for (const [p, rec] of Object.entries(entry.outs)) await restoreOut(ws, p, rec);
    } catch (e) {
      restoreOuts(ws.root, stage, outPaths);
      throw e;
    }
    discardBackup(ws.root, stage);
    return { outs: entry.outs, from };
  } catch (e) {
    opts.emit({
      type: 'warning',
      message: `run-cache of '${stage}' not used: ${(e as Error).message}; running it instead`,
    });
    return undefined;
  }
}

/** Keep the listing of each folder dep the lock entry records, for `status` to diff against later. */
async function saveDepListings(ws: Workspace, s: GraphStage): Promise<void> {
  const hashes = await ws.fingerprinter.hash(s.deps);
  for (const h of hashes.values()) if (h.hash && h.listing) ws.cache.saveListing(h.hash, h.listing());
}

/** `run --push`: send a finished stage's objects and run entry to the remote. */
async function pushStage(ws: Workspace, stage: string, opts: RunOptions): Promise<void> {
  const entry = ws.lock.stages[stage];
  if (!opts.pushTo || !entry) return;
  const { keys } = keysForEntry(ws.cache, stage, entry);
  const r = await push(ws.cache, opts.pushTo, keys, { jobs: 8, emit: opts.emit, signal: opts.signal });
  if (r.failed.length > 0) {
    opts.emit({ type: 'warning', message: `push of '${stage}' to '${opts.pushTo.name}' failed: ${r.failed[0].error}` });
  }
}

/** Put back outs that a crashed earlier run had moved aside. */
function recoverCrashedRuns(ws: Workspace, emit: Logger): void {
  for (const name of pendingBackups(ws.root)) {
    const node = ws.graph.byName.get(name as never);
    const restored = restoreOuts(ws.root, name, node ? node.outs.filter((o) => !o.persist).map((o) => o.path) : []);
    emit({ type: 'recovered', stage: name, paths: restored });
  }
}

export async function runPipeline(ws: Workspace, opts: RunOptions): Promise<RunResult> {
  const started = performance.now();
  const { emit, signal } = opts;
  const selected = selectStages(ws.graph, opts.targets, opts.downstream);
  const selectedNames = new Set(selected.map((s) => s.name as string));

  if (opts.dryRun) {
    const status = await computeStatus(ws, selected);
    const plan = status.map((s) => ({
      name: s.name,
      reasons: opts.force ? [{ kind: 'forced' } as Reason] : s.reasons,
      restorable: !opts.force && opts.runCache && Boolean(s.restorable),
    }));
    emit({ type: 'run-plan', stages: plan });
    const stages = plan.map((p) => ({
      name: p.name,
      outcome: (p.reasons.length ? 'ran' : 'fresh') as StageOutcome,
      seconds: 0,
      reasons: p.reasons,
    }));
    return { stages, interrupted: false, failed: false };
  }

  recoverCrashedRuns(ws, emit);
  // Entries of stages no longer declared go with the next lock write (their outs stay in the cache
  // until `gc`).
  for (const name of Object.keys(ws.lock.stages)) if (!ws.graph.byName.has(name as never)) delete ws.lock.stages[name];
  await ws.fingerprinter.loadCodeDeps(selected);

  const outcome = new Map<string, StageSummary>();
  const running = new Map<string, Promise<void>>();
  let stopScheduling = false;

  const finish = (s: GraphStage, o: StageOutcome, seconds: number, reasons: Reason[]) => {
    outcome.set(s.name, { name: s.name, outcome: o, seconds, reasons });
  };

  const runOne = async (s: GraphStage): Promise<void> => {
    const t0 = performance.now();
    const fp = ws.fingerprinter;
    const { fingerprint, outs } = await fp.compute(s);
    const reasons = opts.force ? [{ kind: 'forced' } as Reason] : explain(ws.lock.stages[s.name], fingerprint, outs);
    if (reasons.length === 0) {
      emit({ type: 'stage-fresh', stage: s.name });
      finish(s, 'fresh', 0, []);
      return;
    }
    if (signal.aborted) return;
    const outPaths = s.outs.map((o) => o.path);
    if (opts.runCache && !opts.force && s.stage.runCache !== false) {
      const restored = await restoreFromRunCache(ws, s.name, fingerprint.fingerprint, outPaths, opts);
      if (restored) {
        ws.lock.stages[s.name] = { ...fingerprint, outs: restored.outs };
        writeLock(ws.root, ws.lock);
        await saveDepListings(ws, s);
        fp.invalidate(outPaths);
        ws.statCache.save();
        const seconds = (performance.now() - t0) / 1000;
        emit({ type: 'stage-restored', stage: s.name, seconds, from: restored.from, link: ws.cache.linkKind });
        finish(s, 'restored', seconds, reasons);
        await pushStage(ws, s.name, opts);
        return;
      }
    }
    emit({ type: 'stage-start', stage: s.name, reasons });
    // Persisted outs stay where they are: the stage continues from them, and keeps them if it fails.
    const replaced = s.outs.filter((o) => !o.persist).map((o) => o.path);
    backupOuts(ws.root, s.name, replaced);
    for (const p of outPaths) mkdirSync(path.dirname(path.join(ws.root, p)), { recursive: true });
    // Folder and glob deps' listings go to the cache first: `ctx.depFiles` reads them there.
    await saveDepListings(ws, s);
    const depHashes = Object.fromEntries(
      [...(await fp.hash(s.deps))].map(([d, h]) => [d, h.listing ? (h.hash ?? null) : null]),
    );
    let failure: Failure | undefined = await spawnStage({
      name: s.name,
      root: ws.root,
      cmd: s.stage.cmd !== undefined ? interpolate(s.stage.cmd, fp.params(s), s.name) : undefined,
      params: Object.fromEntries(fp.params(s)),
      job: s.stage.run
        ? {
            pipelineFile: ws.pipeline.file,
            stage: s.name,
            root: ws.root,
            params: nestParams(fp.params(s)),
            deps: s.deps,
            outs: outPaths,
            depHashes,
            cacheDir: ws.cache.dir,
          }
        : undefined,
      signal: opts.stageSignal ? AbortSignal.any([signal, opts.stageSignal(s.name)]) : signal,
      emit,
    });
    fp.invalidate(outPaths);
    let outHashes: Awaited<ReturnType<typeof fp.hash>> | undefined;
    if (!failure) {
      outHashes = await fp.hash(outPaths);
      const missing = outPaths.filter((p) => outHashes?.get(p)?.kind === 'missing');
      if (missing.length > 0) failure = { reason: 'missing-out', stage: s.name, paths: missing };
    }
    const seconds = (performance.now() - t0) / 1000;
    if (failure || !outHashes) {
      restoreOuts(ws.root, s.name, replaced);
      fp.invalidate(outPaths);
      emit({ type: 'stage-failure', stage: s.name, seconds, failure: failure as Failure });
      finish(s, 'failed', seconds, reasons);
      if (!opts.keepGoing) stopScheduling = true;
      return;
    }
    const hashes = outHashes;
    const outRecords = Object.fromEntries(outPaths.map((p) => [p, toRecord(hashes.get(p) as never)]));
    // Into the cache before the lock names them: whatever the lock records can be checked out again.
    for (const p of outPaths) ws.cache.storeOut(p, hashes.get(p) as never);
    ws.cache.saveRun({
      stage: s.name,
      fingerprint: fingerprint.fingerprint,
      outs: outRecords,
      created: new Date().toISOString(),
    });
    ws.lock.stages[s.name] = { ...fingerprint, outs: outRecords };
    writeLock(ws.root, ws.lock);
    discardBackup(ws.root, s.name);
    ws.statCache.save();
    emit({ type: 'stage-success', stage: s.name, seconds });
    finish(s, 'ran', seconds, reasons);
    await pushStage(ws, s.name, opts);
  };

  // The scheduler: start whatever is ready, wait for any running stage to finish, repeat.
  const pending = [...selected];
  while (pending.length > 0 || running.size > 0) {
    if (!signal.aborted && !stopScheduling) {
      for (const s of [...pending]) {
        if (running.size >= opts.jobs) break;
        const ups = s.upstream.filter((u) => selectedNames.has(u));
        const blocked = ups.find((u) => ['failed', 'skipped'].includes(outcome.get(u)?.outcome ?? ''));
        if (blocked) {
          pending.splice(pending.indexOf(s), 1);
          emit({ type: 'stage-skipped', stage: s.name, because: `upstream '${blocked}' failed` });
          finish(s, 'skipped', 0, []);
          continue;
        }
        if (!ups.every((u) => outcome.has(u))) continue;
        pending.splice(pending.indexOf(s), 1);
        const p = runOne(s).catch((e: Error) => {
          emit({
            type: 'stage-failure',
            stage: s.name,
            seconds: 0,
            failure: { reason: 'threw', stage: s.name, message: e.message, stack: e.stack },
          });
          finish(s, 'failed', 0, []);
          if (!opts.keepGoing) stopScheduling = true;
        });
        running.set(
          s.name,
          p.finally(() => running.delete(s.name)),
        );
      }
    }
    if (running.size === 0) break;
    await Promise.race(running.values());
  }

  ws.statCache.save();
  const interrupted = signal.aborted;
  const stages = selected.map(
    (s) => outcome.get(s.name) ?? { name: s.name, outcome: 'skipped' as StageOutcome, seconds: 0, reasons: [] },
  );
  const summary: Event = {
    type: 'run-summary',
    stages,
    seconds: (performance.now() - started) / 1000,
    interrupted,
    io: { ...ws.fingerprinter.hasher.stats },
  };
  emit(summary);
  return { stages, interrupted, failed: stages.some((s) => s.outcome === 'failed') };
}
