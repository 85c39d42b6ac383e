// Runs one stage in its own process group: a shell `cmd` through execa, or a TypeScript `run(ctx)` in a
// worker process (worker.ts) that gets its job over IPC. A separate process means Ctrl-C can always stop a
// stage (even one stuck in native code), a crash cannot take the engine down, two stages really run in
// parallel, and a job is plain data that a remote worker could take from a queue instead.
//
// Stopping: SIGTERM to the whole group (so a shell's children die too), SIGKILL after a grace period.

import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ResultPromise } from 'execa';
import type { Logger } from './events.ts';
import type { StageFailure } from './failure.ts';
import type { ProgressUpdate } from './types.ts';

const KILL_GRACE_MS = 3000;
const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));
const TSX_LOADER = fileURLToPath(import.meta.resolve('tsx'));

/** What a worker needs to run a TypeScript stage: plain data, no closures. */
export interface StageJob {
  pipelineFile: string;
  stage: string;
  root: string;
  params: Record<string, unknown>;
  deps: string[];
  outs: string[];
  /** Each dep's content hash where it is a folder or glob (its listing is in the cache), else null. */
  depHashes: Record<string, string | null>;
  /** The content-addressed cache, where `listings/<hash>.json` are. */
  cacheDir: string;
}

export type WorkerMessage =
  | { type: 'progress'; progress: ProgressUpdate }
  | { type: 'log'; level: 'info' | 'warn'; message: string }
  | { type: 'error'; message: string; stack?: string };

export interface SpawnOptions {
  name: string;
  root: string;
  cmd?: string;
  /** The stage's resolved params, given to a shell stage as PIPELINE_PARAMS (JSON). */
  params: Record<string, unknown>;
  job?: StageJob;
  signal: AbortSignal;
  emit: Logger;
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

export async function spawnStage(opts: SpawnOptions): Promise<StageFailure | undefined> {
  const { name, root, emit } = opts;
  const logDir = path.join(root, '.pipeline', 'logs');
  mkdirSync(logDir, { recursive: true });
  const log = createWriteStream(path.join(logDir, `${name}.log`));
  // execa is loaded on first use: a no-op run never spawns anything and should not pay for it.
  const { execa, execaNode } = await import('execa');
  const common = { cwd: root, detached: true, reject: false, stdin: 'ignore', buffer: false } as const;
  const child: ResultPromise = opts.cmd
    ? execa(opts.cmd, {
        ...common,
        shell: true,
        env: { PIPELINE_STAGE: name, PIPELINE_PARAMS: JSON.stringify(opts.params) },
      })
    : execaNode(WORKER, [], {
        ...common,
        nodeOptions: ['--import', TSX_LOADER],
        ipcInput: opts.job as never,
        env: { PIPELINE_STAGE: name, PIPELINE_WORKER: '1' },
      });

  const stderrTail: string[] = [];
  const pump = (stream: NodeJS.ReadableStream | null, kind: 'stdout' | 'stderr') => {
    if (!stream) return;
    createInterface({ input: stream }).on('line', (line) => {
      log.write(`${line}\n`);
      if (kind === 'stderr') {
        stderrTail.push(line);
        if (stderrTail.length > 20) stderrTail.shift();
      }
      emit({ type: 'stage-output', stage: name, stream: kind, line });
    });
  };
  pump(child.stdout, 'stdout');
  pump(child.stderr, 'stderr');

  let thrown: { message: string; stack?: string } | undefined;
  let messages: Promise<void> = Promise.resolve();
  if (!opts.cmd) {
    messages = (async () => {
      for await (const raw of (child.getEachMessage as unknown as () => AsyncIterable<unknown>)()) {
        const msg = raw as WorkerMessage;
        if (msg.type === 'progress') emit({ type: 'stage-progress', stage: name, progress: msg.progress });
        else if (msg.type === 'log') {
          log.write(`${msg.message}\n`);
          emit({ type: 'stage-output', stage: name, stream: msg.level === 'warn' ? 'warn' : 'log', line: msg.message });
        } else if (msg.type === 'error') thrown = msg;
      }
    })().catch(() => undefined);
  }

  let killTimer: NodeJS.Timeout | undefined;
  const onAbort = () => {
    killGroup(child.pid, 'SIGTERM');
    killTimer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS);
  };
  if (opts.signal.aborted) onAbort();
  else opts.signal.addEventListener('abort', onAbort, { once: true });

  const result = await child;
  await messages;
  opts.signal.removeEventListener('abort', onAbort);
  if (killTimer) clearTimeout(killTimer);
  // A stage may have left children behind in its group; they must not outlive it.
  killGroup(child.pid, 'SIGKILL');
  await new Promise<void>((resolve) => log.end(resolve));

  if (opts.signal.aborted) return { reason: 'aborted', stage: name };
  if (thrown) return { reason: 'threw', stage: name, message: thrown.message, stack: thrown.stack };
  if (result.signal) return { reason: 'killed', stage: name, signal: result.signal };
  if (result.exitCode !== 0) {
    return { reason: 'exit-non-zero', stage: name, code: result.exitCode ?? -1, stderr: stderrTail.join('\n') };
  }
  return undefined;
}
