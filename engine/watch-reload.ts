// Reading pipeline.ts afresh after it, or a module it imports, changed. ESM has no way to drop a module
// from the cache, and a cache-busting `?v=2` reaches only pipeline.ts itself (its stage modules would
// stay cached), so a short-lived process imports the definition (watch-describe.ts) and sends back its
// stages as plain data. A syntax error, a throw, a hang or a `process.exit` in pipeline.ts ends that
// process, never the watcher, and nothing of an old definition stays in memory.
//
// Plain data is enough: the engine only reads a stage's declaration; a TypeScript stage's `run` is
// always called in a worker process, which imports pipeline.ts itself (spawn-stage.ts, worker.ts).

import { fileURLToPath } from 'node:url';
import type { Failure } from './failure.ts';
import type { OutSpec, Pipeline, Stage, StageName } from './types.ts';

const DESCRIBE = fileURLToPath(new URL('./watch-describe.ts', import.meta.url));
const TSX_LOADER = fileURLToPath(import.meta.resolve('tsx'));
const TIMEOUT_MS = 120_000;

/** A stage as declared, without its function. */
export interface StageDescription {
  name: string;
  deps?: string[];
  params?: string[];
  outs?: Array<string | OutSpec>;
  cmd?: string;
  description?: string;
  sourceModule: string;
  /** Has a `run` function (a TypeScript stage). */
  ts: boolean;
}

export type DescribeMessage =
  | { ok: true; file: string; stages: StageDescription[] }
  | { ok: false; message: string; failure?: Failure };

export type Reloaded = { ok: true; pipeline: Pipeline } | { ok: false; message: string; failure?: Failure };

/** Stands in for a TypeScript stage's `run` in the watcher: the real one runs in a worker. */
const runsInWorker = () => {
  throw new Error('a reloaded stage runs in a worker process, never in the watcher');
};

export function describeStages(pipeline: Pipeline): StageDescription[] {
  return pipeline.stages.map((s) => ({
    name: s.name,
    deps: s.deps,
    params: s.params,
    outs: s.outs,
    cmd: s.cmd,
    description: s.description,
    sourceModule: s.sourceModule,
    ts: typeof s.run === 'function',
  }));
}

export async function reloadPipeline(file: string, signal: AbortSignal): Promise<Reloaded> {
  const { execaNode } = await import('execa');
  const r = await execaNode(DESCRIBE, [file], {
    nodeOptions: ['--import', TSX_LOADER],
    // Skips runIfMain and the CLI's own error handler, as in a stage worker.
    env: { PIPELINE_WORKER: '1' },
    stdin: 'ignore',
    ipc: true,
    reject: false,
    cancelSignal: signal,
    timeout: TIMEOUT_MS,
  });
  const msg = r.ipcOutput[0] as DescribeMessage | undefined;
  if (!msg) {
    const why = r.timedOut ? `took over ${TIMEOUT_MS / 1000} s` : `exited (${r.exitCode ?? r.signal}) before saying`;
    const tail = String(r.stderr ?? '')
      .trim()
      .split('\n')
      .slice(-8)
      .join('\n');
    return { ok: false, message: `loading ${file} ${why}${tail ? `:\n${tail}` : ''}` };
  }
  if (!msg.ok) return msg;
  const stages = msg.stages.map(
    ({ ts, ...s }): Stage => ({ ...s, name: s.name as StageName, ...(ts ? { run: runsInWorker } : {}) }),
  );
  return { ok: true, pipeline: { file: msg.file, stages } };
}
