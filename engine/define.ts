// `stage()` and `definePipeline()`: the declarative surface of pipeline.ts.
// Each records the module that called it (from the call stack) so the engine can find a stage's code
// dependencies without the author listing them.

import { fileURLToPath } from 'node:url';
import { PipelineError } from './failure.ts';
import type { Pipeline, Stage, StageDefinition, StageName } from './types.ts';

const NAME = /^[a-z][a-z0-9_-]*$/i;

/** The file of the first stack frame outside this module. */
function callerFile(): string {
  const stack = new Error().stack?.split('\n').slice(1) ?? [];
  const self = fileURLToPath(import.meta.url);
  for (const line of stack) {
    const m = line.match(/\(?((?:file:\/\/)?\/[^():]+):\d+:\d+\)?$/);
    if (!m) continue;
    const file = m[1].startsWith('file://') ? fileURLToPath(m[1]) : m[1];
    if (file !== self) return file;
  }
  throw new Error('cannot tell which module declared this stage');
}

/** Declare a stage. `P` types `ctx.params` (the resolved config keys the stage lists). */
export function stage<P = Record<string, unknown>>(name: string, def: StageDefinition<P>): Stage<P> {
  if (!NAME.test(name)) {
    throw new PipelineError({
      reason: 'invalid-definition',
      message: `stage name '${name}' is invalid: use letters, digits, '-' and '_', starting with a letter`,
    });
  }
  if (!def.run === !def.cmd) {
    throw new PipelineError({
      reason: 'invalid-definition',
      message: `stage '${name}' must have exactly one of run (a TypeScript function) or cmd (a shell command)`,
    });
  }
  return { ...def, name: name as StageName, sourceModule: callerFile() };
}

export function definePipeline(stages: Stage<never>[] | Stage[]): Pipeline {
  const seen = new Set<string>();
  for (const s of stages) {
    if (seen.has(s.name)) {
      throw new PipelineError({ reason: 'invalid-definition', message: `two stages are named '${s.name}'` });
    }
    seen.add(s.name);
  }
  return { stages: stages as Stage[], file: callerFile() };
}
