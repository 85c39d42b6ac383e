// The `watch` command's session: like cli-session.ts, CLI code (signals, stdout, exit codes). Ctrl-C or
// SIGTERM stops the run in progress as `run` does (nothing recorded for its stages), closes the watcher
// and exits 0 after a summary line: stopping is how a watch ends, not a failure.

import { availableParallelism } from 'node:os';
import { type CommonOpts, EXIT, jsonLogger, positiveInt } from './cli-session.ts';
import { PipelineError } from './failure.ts';
import type { Pipeline } from './types.ts';
import { watchPipeline } from './watch.ts';

export interface WatchOpts extends CommonOpts {
  debounce?: string;
  jobs?: string;
  keepGoing?: boolean;
  runCache?: boolean;
}

export async function watchCommand(pipeline: Pipeline, targets: string[], o: WatchOpts): Promise<number> {
  const debounceMs = Number(o.debounce ?? 200);
  if (!Number.isInteger(debounceMs) || debounceMs < 0) {
    throw new PipelineError({
      reason: 'invalid-definition',
      message: `--debounce must be a whole number of milliseconds, not '${o.debounce}'`,
    });
  }
  const jobs = positiveInt(o.jobs, '--jobs', availableParallelism());
  const { humanLogger } = await import('./render-human.ts');
  const emit = o.json ? jsonLogger : humanLogger({ out: process.stdout, verbose: Boolean(o.verbose) });
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) return;
    emit({ type: 'interrupt', signal: sig });
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const result = await watchPipeline({
      pipeline,
      targets,
      configName: o.configName,
      sets: o.set,
      debounceMs,
      jobs,
      keepGoing: Boolean(o.keepGoing),
      runCache: o.runCache !== false,
      signal: controller.signal,
      emit,
    });
    if (result.usageError) throw result.usageError;
    return EXIT.ok;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
