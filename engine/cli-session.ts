// What the CLI's commands share: their common options, opening the workspace, the JSON logger, and
// the session a workspace-changing command runs in (run lock, Ctrl-C). Like cli.ts, only CLI code uses it.

import path from 'node:path';
import type { Command } from 'commander';
import type { Event, Logger } from './events.ts';
import { PipelineError } from './failure.ts';
import type { Pipeline } from './types.ts';
import { openWorkspace, type Workspace } from './workspace.ts';

export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

export interface CommonOpts {
  configName: string;
  set: string[];
  json?: boolean;
  verbose?: boolean;
}

const collect = (v: string, acc: string[]) => [...acc, v];

export function common(cmd: Command): Command {
  return cmd
    .option('--config-name <name>', 'config to use: configs/<name>.yaml', 'default')
    .option(
      '--set <key=value>',
      'override a config key (value is YAML); repeatable; +key=value adds a key',
      collect,
      [],
    )
    .option('--json', 'machine-readable output')
    .option('-v, --verbose', 'say more');
}

export function open(pipeline: Pipeline, o: CommonOpts) {
  return openWorkspace({ root: path.dirname(pipeline.file), pipeline, configName: o.configName, sets: o.set });
}

export const jsonLogger: Logger = (e: Event) => process.stdout.write(`${JSON.stringify(e)}\n`);

export interface Session {
  ws: Workspace;
  emit: Logger;
  signal: AbortSignal;
}

/**
 * Open the workspace for a command that changes it (run, checkout, pull, gc): Ctrl-C aborts its signal,
 * and it holds the workspace's run lock, waiting for another holder unless --no-wait.
 */
export async function withWorkspaceLock(
  pipeline: Pipeline,
  o: CommonOpts & { wait?: boolean },
  fn: (s: Session) => Promise<number>,
): Promise<number> {
  // Loaded here, not at the top: `status` and `dag` should not pay for progress bars and locks.
  const [{ humanLogger }, { acquireRunLock }, { readLock }] = await Promise.all([
    import('./render-human.ts'),
    import('./run-lock.ts'),
    import('./lockfile.ts'),
  ]);
  const ws = open(pipeline, o);
  const emit = o.json ? jsonLogger : humanLogger({ out: process.stdout, verbose: Boolean(o.verbose) });
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      emit({ type: 'interrupt', signal: sig });
      controller.abort();
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const release = await acquireRunLock(ws.root, { wait: o.wait !== false, emit, signal: controller.signal });
  try {
    // Read the lock only now: a run we waited for may have just changed it.
    ws.lock = readLock(ws.root);
    return await fn({ ws, emit, signal: controller.signal });
  } finally {
    await release();
  }
}

export const positiveInt = (v: unknown, flag: string, fallback: number): number => {
  const n = Number(v ?? fallback);
  if (!Number.isInteger(n) || n < 1) {
    throw new PipelineError({
      reason: 'invalid-definition',
      message: `${flag} must be a positive integer, not '${v}'`,
    });
  }
  return n;
};

export const kb = (n: number) =>
  n < 1e6 ? `${(n / 1e3).toFixed(1)} kB` : n < 1e9 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e9).toFixed(2)} GB`;

export function say(o: CommonOpts, data: unknown, text: string): void {
  process.stdout.write(o.json ? `${JSON.stringify(data)}\n` : `${text}\n`);
}
