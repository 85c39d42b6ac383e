// The process `watch` starts to read pipeline.ts afresh (see watch-reload.ts): imports it, and sends
// its stages back over IPC as plain data, or what went wrong.

import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { sendMessage } from 'execa';
import type { PipelineError } from './failure.ts';
import type { Pipeline } from './types.ts';
import { type DescribeMessage, describeStages } from './watch-reload.ts';

async function describe(file: string): Promise<DescribeMessage> {
  try {
    const mod = await import(pathToFileURL(file).href);
    const pipeline: Pipeline | undefined = mod.default ?? mod.pipeline;
    if (!pipeline?.stages) return { ok: false, message: `${file} must \`export default definePipeline([...])\`` };
    return { ok: true, file: pipeline.file, stages: describeStages(pipeline) };
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    // A PipelineError (a bad stage name, two stages with one name) says exactly what to fix; anything
    // else is a throw while loading, whose stack names the line.
    const failure = (err as Partial<PipelineError>).failure;
    if (failure) return { ok: false, message: err.message, failure };
    const frames = (err.stack ?? '')
      .split('\n')
      .filter((l) => /^\s+at /.test(l) && !/node_modules|node:internal|\(node:/.test(l))
      .slice(0, 3);
    return { ok: false, message: [`${path.basename(file)} does not load: ${err.message}`, ...frames].join('\n') };
  }
}

const msg = await describe(process.argv[2]);
await sendMessage(msg as never);
// The pipeline's modules may have left timers or handles open: this process's work is done.
process.exit(0);
