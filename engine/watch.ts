// `watch`: keep the targets up to date while you edit. The engine does the work exactly as for `run`
// (the executor decides what is stale, runs only that, and stops and restores a cancelled stage); this
// file decides when.
//
//   chokidar event --classify (watch-paths.ts)--> pending changes, debounce timer restarted
//   burst settled:  idle -> cycle: [reload pipeline.ts] -> run lock -> open workspace -> runPipeline
//                   busy -> a running stage's deps / code / params changed? -> abort the run; the next
//                           cycle starts as soon as it has stopped
//   after a cycle:  recompute the wanted paths; if they, or which of them exist, changed, start a new
//                   chokidar (the old one keeps watching until the new one is ready), then wait
//
// One cycle at a time, so a stage never runs twice at once. The run lock is held only during a cycle:
// an idle watcher leaves the workspace to a `run`, `checkout` or `gc` in another terminal, and a cycle
// that finds it taken waits, as `run` does.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FSWatcher } from 'chokidar';
import { findCodeDeps } from './code-deps.ts';
import { type ConfigTree, loadConfig, nearest, resolveParams } from './config.ts';
import type { Event, Logger, WatchOutcome } from './events.ts';
import { runPipeline } from './executor.ts';
import { describeFailure, PipelineError } from './failure.ts';
import type { Fingerprinter } from './fingerprint.ts';
import { buildGraph, normalizePath, selectStages } from './graph.ts';
import { acquireRunLock } from './run-lock.ts';
import type { Pipeline, StageName } from './types.ts';
import { type ChangeKind, changeKind, WatchMatcher } from './watch-paths.ts';
import { reloadPipeline } from './watch-reload.ts';
import { openWorkspace, type Workspace } from './workspace.ts';

export interface WatchOptions {
  pipeline: Pipeline;
  targets: string[];
  configName: string;
  sets: string[];
  /** Quiet milliseconds after the last change before a cycle starts. */
  debounceMs: number;
  jobs: number;
  keepGoing: boolean;
  runCache: boolean;
  /** Aborted on Ctrl-C: stop the run in progress (nothing recorded), close the watcher, return. */
  signal: AbortSignal;
  emit: Logger;
}

export interface WatchResult {
  /** Set when the targets named no stage at start: nothing was watched. */
  usageError?: PipelineError;
}

/** The run in progress. */
interface Cycle {
  controller: AbortController;
  ws?: Workspace;
  running: Set<string>;
  /** One per started stage: cancelling a stage leaves the others running. */
  stageControllers: Map<string, AbortController>;
  cancelled: Set<string>;
}

/** Changed paths listed in a `watch-cycle` or `watch-cancel` event; the rest are counted. */
const LISTED = 20;

export function watchPipeline(opts: WatchOptions): Promise<WatchResult> {
  return new PipelineWatcher(opts).watch();
}

class PipelineWatcher {
  private pipeline: Pipeline;
  private readonly root: string;
  /** pipeline.ts and its local imports, project-relative. */
  private definition: string[] = [];
  /** The last reload failed: every cycle tries again until it works. */
  private definitionBroken = false;
  private reloadWanted = false;
  /** Config files of the last config that loaded (a malformed one still names its own file). */
  private configFiles: string[] = [];
  private matcher?: WatchMatcher;
  private watcher?: FSWatcher;
  private watcherKey = '';
  private pending = new Map<string, ChangeKind>();
  private timer?: NodeJS.Timeout;
  private settled = false;
  private wake?: () => void;
  private cycle?: Cycle;
  /** The last complete cycle's hashes, for `carryOver`, and the lock it left. */
  private lastFingerprinter?: Fingerprinter;
  private lastLock?: string;
  private readonly results = new Map<string, { outcome: WatchOutcome; seconds: number }>();
  private readonly counts = { cycles: 0, ran: 0, failed: 0, cancelled: 0 };
  private readonly started = performance.now();

  constructor(private readonly opts: WatchOptions) {
    this.pipeline = opts.pipeline;
    this.root = path.dirname(opts.pipeline.file);
  }

  async watch(): Promise<WatchResult> {
    const { signal, emit } = this.opts;
    const unknown = this.unknownTarget();
    if (unknown) return { usageError: unknown };
    const onStop = () => {
      this.cycle?.controller.abort();
      this.wake?.();
    };
    signal.addEventListener('abort', onStop, { once: true });
    try {
      await this.findDefinitionFiles();
      await this.rewatch();
      // The first cycle brings the targets up to date; later ones follow changes.
      let changes: Map<string, ChangeKind> | undefined = new Map();
      while (changes && !signal.aborted) {
        await this.runCycle(changes);
        if (signal.aborted) break;
        await this.rewatch();
        changes = await this.nextBurst();
      }
    } finally {
      signal.removeEventListener('abort', onStop);
      clearTimeout(this.timer);
      await this.watcher?.close();
    }
    emit({ type: 'watch-stop', ...this.counts, seconds: (performance.now() - this.started) / 1000 });
    return {};
  }

  private unknownTarget(): PipelineError | undefined {
    const names = this.pipeline.stages.map((s) => s.name as string);
    const t = this.opts.targets.find((x) => !names.includes(x));
    return t ? new PipelineError({ reason: 'unknown-stage', name: t, suggestion: nearest(t, names) }) : undefined;
  }

  /** Wait for the next settled burst of changes; undefined once stopped. */
  private async nextBurst(): Promise<Map<string, ChangeKind> | undefined> {
    if (!this.timer && this.pending.size === 0) this.emitIdle();
    while (!this.opts.signal.aborted) {
      if (this.settled && this.pending.size > 0) {
        const changes = this.pending;
        this.pending = new Map();
        this.settled = false;
        return changes;
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
    return undefined;
  }

  private onEvent(event: string, abs: string): void {
    const matcher = this.matcher;
    const c = matcher?.classify(abs, event);
    const rel = matcher?.rel(abs);
    if (!c || rel === undefined) return;
    const kind = changeKind(event);
    // Created and then written within one burst is still "added".
    this.pending.set(rel, this.pending.get(rel) === 'added' && kind === 'modified' ? 'added' : kind);
    if (c.definition) this.reloadWanted = true;
    this.settled = false;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.onSettled(), this.opts.debounceMs);
  }

  private onSettled(): void {
    this.timer = undefined;
    this.settled = true;
    if (this.cycle) this.cancelIfAffected(this.cycle);
    this.wake?.();
  }

  /**
   * Stop each running stage whose inputs changed: its deps, its code (or the module that declares it), or
   * the value of a config key it reads. Stages running beside it go on; it reruns in the next cycle.
   */
  private cancelIfAffected(cycle: Cycle): void {
    const { ws } = cycle;
    const matcher = this.matcher;
    if (!ws || !matcher || cycle.running.size === 0) return;
    const paths = [...this.pending.keys()];
    let tree: ConfigTree | undefined;
    if (paths.some((p) => matcher.isConfig(p))) {
      try {
        tree = loadConfig(this.root, this.opts.configName, this.opts.sets).tree;
      } catch {
        tree = undefined; // malformed mid-edit: the next cycle reports it
      }
    }
    const affected = [...cycle.running].filter((name) => {
      if (cycle.cancelled.has(name)) return false;
      const node = ws.graph.byName.get(name as StageName);
      if (!node) return false;
      const code = [...ws.fingerprinter.codeFiles(node), normalizePath(this.root, node.stage.sourceModule)];
      if (paths.some((p) => matcher.touches(p, node.deps, code))) return true;
      if (!tree || !node.stage.params?.length) return false;
      const now = ws.fingerprinter.params(node);
      try {
        return JSON.stringify([...resolveParams(tree, node.stage.params, name)]) !== JSON.stringify([...now]);
      } catch {
        return true; // a key it reads is gone
      }
    });
    if (affected.length === 0) return;
    for (const name of affected) cycle.cancelled.add(name);
    this.opts.emit({ type: 'watch-cancel', stages: affected, paths: paths.slice(0, LISTED) });
    for (const name of affected) cycle.stageControllers.get(name)?.abort();
  }

  private async runCycle(changes: Map<string, ChangeKind>): Promise<void> {
    const { emit, signal } = this.opts;
    const reload = this.reloadWanted || this.definitionBroken;
    this.reloadWanted = false;
    emit({
      type: 'watch-cycle',
      cycle: ++this.counts.cycles,
      changes: [...changes].slice(0, LISTED).map(([p, change]) => ({ path: p, change })),
      count: changes.size,
      reload,
    });
    // Taken now, so that a cycle that ends early (a bad edit, an error) leaves none behind: its changes
    // would otherwise be missing from the next cycle's carry-over.
    const previous = this.lastFingerprinter;
    this.lastFingerprinter = undefined;
    if (reload && !(await this.reload())) return;

    const cycle: Cycle = {
      controller: new AbortController(),
      running: new Set(),
      stageControllers: new Map(),
      cancelled: new Set(),
    };
    this.cycle = cycle;
    const runSignal = AbortSignal.any([signal, cycle.controller.signal]);
    const aborted = new Set<string>();
    let release: (() => Promise<void>) | undefined;
    try {
      release = await acquireRunLock(this.root, { wait: true, emit, signal: runSignal });
      // Opened under the lock, as `run` does: the config, the graph and pipeline.lock as they are now.
      const ws = openWorkspace({
        root: this.root,
        pipeline: this.pipeline,
        configName: this.opts.configName,
        sets: this.opts.sets,
      });
      // What the file system did not report as changed keeps its hash from the last cycle: a no-op
      // cycle then walks no folder dep (70,000 files: ~300 ms of stats saved per save).
      // Not if pipeline.lock changed meanwhile: a `run` elsewhere may have rewritten outs we do not watch.
      if (previous && this.lastLock === lockText(this.root)) {
        ws.fingerprinter.carryOver(previous, [...changes.keys()]);
      }
      cycle.ws = ws;
      const result = await runPipeline(ws, {
        targets: this.opts.targets,
        jobs: this.opts.jobs,
        force: false,
        dryRun: false,
        keepGoing: this.opts.keepGoing,
        downstream: false,
        signal: runSignal,
        emit: this.tracker(cycle, aborted),
        runCache: this.opts.runCache,
        stageSignal: (name) => {
          const c = new AbortController();
          cycle.stageControllers.set(name, c);
          return c.signal;
        },
      });
      // Only a run that went to its end leaves hashes worth keeping (a cancelled one put outs back).
      this.lastFingerprinter = result.interrupted ? undefined : ws.fingerprinter;
      this.lastLock = lockText(this.root);
      for (const s of result.stages) {
        if (aborted.has(s.name)) this.results.set(s.name, { outcome: 'cancelled', seconds: s.seconds });
        // Not reached because the run was stopped: its last result still stands.
        else if (!(result.interrupted && s.outcome === 'skipped')) {
          this.results.set(s.name, { outcome: s.outcome, seconds: s.seconds });
        }
      }
    } catch (e) {
      // Stopped while waiting for another run's lock.
      if (runSignal.aborted && e instanceof PipelineError && e.failure.reason === 'locked') return;
      emit(errorEvent(e));
    } finally {
      this.cycle = undefined;
      await release?.();
    }
  }

  /** Follow what the executor says: which stages are running, and how each ended. */
  private tracker(cycle: Cycle, aborted: Set<string>): Logger {
    return (e: Event) => {
      if (e.type === 'stage-start') cycle.running.add(e.stage);
      else if (e.type === 'stage-success' || e.type === 'stage-restored') {
        cycle.running.delete(e.stage);
        this.counts.ran++;
      } else if (e.type === 'stage-failure') {
        cycle.running.delete(e.stage);
        if (e.failure.reason === 'aborted') {
          aborted.add(e.stage);
          this.counts.cancelled++;
        } else this.counts.failed++;
      }
      this.opts.emit(e);
    };
  }

  /** Read pipeline.ts again (watch-reload.ts). False while it cannot be used: nothing runs. */
  private async reload(): Promise<boolean> {
    const { emit, signal } = this.opts;
    const r = await reloadPipeline(this.pipeline.file, signal);
    await this.findDefinitionFiles();
    if (signal.aborted) return false;
    if (!r.ok) {
      this.definitionBroken = true;
      emit({ type: 'watch-error', message: r.failure ? describeFailure(r.failure) : r.message, failure: r.failure });
      return false;
    }
    this.definitionBroken = false;
    this.pipeline = r.pipeline;
    emit({
      type: 'watch-reload',
      file: normalizePath(this.root, r.pipeline.file),
      stages: r.pipeline.stages.map((s) => s.name),
    });
    return true;
  }

  /** pipeline.ts's local imports (as for a stage's code deps); while it does not parse, the last known. */
  private async findDefinitionFiles(): Promise<void> {
    const file = this.pipeline.file;
    try {
      this.definition = (await findCodeDeps(this.root, [file])).get(file) ?? [];
    } catch {
      this.definition = [...new Set([...this.definition, normalizePath(this.root, file)])];
    }
  }

  /**
   * Make chokidar watch what the targets read now. Read from the definition, not from a run, so that a
   * config or graph that does not load (the user is fixing it) still leaves the right paths watched.
   */
  private async rewatch(): Promise<void> {
    const stages = this.watchedStages();
    try {
      this.configFiles = loadConfig(this.root, this.opts.configName, this.opts.sets).files.map((f) =>
        normalizePath(this.root, f),
      );
    } catch {
      // Keep the last chain; the named config is watched whatever happens.
    }
    const named = `configs/${this.opts.configName}.yaml`;
    const matcher = new WatchMatcher(this.root, {
      deps: stages.flatMap((s) => (s.deps ?? []).map((d) => normalizePath(this.root, d))),
      config: [...new Set([...this.configFiles, named])],
      definition: this.definition,
      outs: this.pipeline.stages.flatMap((s) =>
        (s.outs ?? []).map((o) => normalizePath(this.root, typeof o === 'string' ? o : o.path)),
      ),
    });
    this.matcher = matcher;
    const roots = matcher.roots();
    const key = JSON.stringify([roots, matcher.wanted]);
    if (key === this.watcherKey && this.watcher) return;
    this.watcherKey = key;
    const { watch } = await import('chokidar');
    const next = watch(
      roots.map((r) => path.join(this.root, r)),
      { ignoreInitial: true, ignored: matcher.ignored },
    );
    next.on('all', (event, abs) => this.onEvent(event, abs));
    next.on('raw', (raw, name, details) => {
      const found = this.matcher?.fromRaw(raw, name, (details as { watchedPath: string }).watchedPath);
      if (found) this.onEvent(found.event, found.abs);
    });
    next.on('error', (e) => {
      const err = e as NodeJS.ErrnoException;
      const hint =
        err.code === 'ENOSPC' ? ' (out of inotify watches: raise fs.inotify.max_user_watches with sysctl)' : '';
      this.opts.emit({ type: 'warning', message: `watching: ${err.message}${hint}` });
    });
    await new Promise<void>((resolve) => {
      next.once('ready', resolve);
      this.opts.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    // The old watcher covered the new one's start-up; now it can go.
    const old = this.watcher;
    this.watcher = next;
    await old?.close();
  }

  /** The targets and what they need; every stage while the graph does not build. */
  private watchedStages(): Pipeline['stages'] {
    try {
      const names = new Set(selectStages(buildGraph(this.root, this.pipeline), this.opts.targets).map((s) => s.name));
      return this.pipeline.stages.filter((s) => names.has(s.name));
    } catch {
      return this.pipeline.stages;
    }
  }

  private emitIdle(): void {
    this.opts.emit({
      type: 'watch-idle',
      watching: this.matcher?.wanted.length ?? 0,
      stages: this.pipeline.stages
        .filter((s) => this.results.has(s.name))
        .map((s) => ({ name: s.name, ...(this.results.get(s.name) as { outcome: WatchOutcome; seconds: number }) })),
    });
  }
}

function errorEvent(e: unknown): Event {
  if (e instanceof PipelineError)
    return { type: 'watch-error', message: describeFailure(e.failure), failure: e.failure };
  const err = e instanceof Error ? e : new Error(String(e));
  return { type: 'watch-error', message: `internal error: ${err.stack ?? err.message}` };
}

function lockText(root: string): string | undefined {
  try {
    return readFileSync(path.join(root, 'pipeline.lock'), 'utf8');
  } catch {
    return undefined;
  }
}
