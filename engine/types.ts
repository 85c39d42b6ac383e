// The engine's vocabulary. Everything here is plain data so that a stage, its fingerprint and its
// result can cross a process (or, later, machine) boundary unchanged.

/** A BLAKE3 content hash, hex. Branded so a path or a name can never be passed where a hash is meant. */
export type ContentHash = string & { readonly __brand: 'ContentHash' };
/** A stage's name as declared in pipeline.ts. */
export type StageName = string & { readonly __brand: 'StageName' };
/** A path relative to the project root, always with forward slashes. */
export type RelPath = string & { readonly __brand: 'RelPath' };

/**
 * What an out is for: plain data, a metrics file (for `metrics show`), a plot source, or a report (a
 * document for people: `exp run` copies it beside itself under the experiment's name).
 */
export type OutRole = 'out' | 'metrics' | 'plots' | 'report';

export interface OutSpec {
  path: string;
  role?: OutRole;
  /**
   * Left in place while the stage runs (not moved aside first), and kept as it is if the stage fails:
   * for stages that update their out incrementally (a download that must not start over).
   */
  persist?: boolean;
}

/** Progress a stage reports: `done` of `total` units (images, epochs, bytes). */
export interface ProgressUpdate {
  done: number;
  total?: number;
  unit?: string;
  /** A short status such as `loss 0.412 acc 0.71`. */
  message?: string;
}

export interface StageLogger {
  info(message: string): void;
  warn(message: string): void;
}

/** Everything a TypeScript stage gets. A stage must not reach for anything else (see DEVELOPERS.md). */
export interface StageContext<P = Record<string, unknown>> {
  name: string;
  /** Absolute project root. */
  root: string;
  /** The config keys the stage declared, resolved, as a nested object (`params.train.lr`). */
  params: P;
  /** Absolute paths of the declared deps and outs, in declaration order. */
  deps: string[];
  outs: string[];
  /** Resolve a project-relative path. */
  path(rel: string): string;
  /**
   * A folder or glob dep's files (relative to the folder, or to the project for a glob) and their BLAKE3
   * content hashes, as the engine hashed them for the fingerprint: a stage that keys work by file content
   * need not read every file again. `dep` as declared (or its absolute path).
   */
  depFiles(dep: string): Map<string, ContentHash>;
  /** Aborted on Ctrl-C, SIGTERM, or when the run is cancelled: stop promptly and throw. */
  signal: AbortSignal;
  progress(update: ProgressUpdate): void;
  log: StageLogger;
}

export interface StageDefinition<P = Record<string, unknown>> {
  /** Files, folders or globs (relative to the project root) the stage reads. */
  deps?: string[];
  /** Config keys the stage reads: exact (`train.lr`) or a subtree (`train.*`). */
  params?: string[];
  /** Files or folders the stage writes. A string is a plain out. */
  outs?: Array<string | OutSpec>;
  /** A TypeScript stage: runs in a worker process with `ctx`. */
  run?: (ctx: StageContext<P>) => Promise<void> | void;
  /** A shell stage: run through the shell in the project root; its stdout/stderr become events. */
  cmd?: string;
  /** One line for `dag` and `status`. */
  description?: string;
  /**
   * false: never restore this stage's outs from the run-cache; when it is stale, it runs. For a stage
   * whose outs may hold what a person put there by hand (a model folder copied in): a restore would
   * silently put back the recorded version over their files.
   */
  runCache?: boolean;
}

/** A stage after `stage()` recorded where it was defined. */
export interface Stage<P = Record<string, unknown>> extends StageDefinition<P> {
  name: StageName;
  /** Absolute path of the module that called `stage()`: the root of its code dependencies. */
  sourceModule: string;
}

/** A declared pipeline: the stages in declaration order. */
export interface Pipeline {
  stages: Stage[];
  /** Absolute path of the module that declared the pipeline. */
  file: string;
}
