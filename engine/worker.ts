// The process a TypeScript stage runs in. Takes one StageJob over IPC, imports the pipeline module
// (which declares but does not run the CLI, since this file is the entry point), builds `ctx`, runs the
// stage, and reports progress, logs and errors back as IPC messages.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { getOneMessage, sendMessage } from 'execa';
import type { StageJob, WorkerMessage } from './spawn-stage.ts';
import type { ContentHash, Pipeline, StageContext } from './types.ts';

const pending = new Set<Promise<void>>();
const send = (m: WorkerMessage) => {
  const p = sendMessage(m as never).catch(() => undefined);
  pending.add(p);
  void p.then(() => pending.delete(p));
};
/** Exit only after every progress and log message has crossed to the engine. */
const exit = async (code: number) => {
  await Promise.all(pending);
  process.exit(code);
};

async function main(): Promise<void> {
  const job = (await getOneMessage()) as unknown as StageJob;
  const mod = await import(pathToFileURL(job.pipelineFile).href);
  const pipeline: Pipeline | undefined = mod.default ?? mod.pipeline;
  const stage = pipeline?.stages.find((s) => s.name === job.stage);
  if (!stage?.run) throw new Error(`pipeline ${job.pipelineFile} has no TypeScript stage '${job.stage}'`);

  const controller = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      controller.abort(new Error(`stage interrupted (${sig})`));
      // Give the stage a moment to stop on its own, then go.
      setTimeout(() => process.exit(130), 1000).unref();
    });
  }

  let lastProgress = 0;
  const ctx: StageContext = {
    name: job.stage,
    root: job.root,
    params: job.params,
    deps: job.deps.map((d) => path.join(job.root, d)),
    outs: job.outs.map((o) => path.join(job.root, o)),
    path: (rel) => path.join(job.root, rel),
    depFiles: (dep) => {
      const rel = path.relative(job.root, path.resolve(job.root, dep)).split(path.sep).join('/');
      const hash = job.depHashes[rel];
      if (!hash) {
        throw new Error(
          `depFiles('${dep}'): not a folder or glob dep of stage '${job.stage}' (its deps: ${job.deps.join(', ')})`,
        );
      }
      const file = path.join(job.cacheDir, 'listings', `${hash}.json`);
      const listing = JSON.parse(readFileSync(file, 'utf8')) as Array<[string, ContentHash]>;
      return new Map(listing);
    },
    signal: controller.signal,
    progress: (progress) => {
      // At most ~10 updates a second cross the process boundary.
      const now = Date.now();
      if (now - lastProgress < 100 && progress.done !== progress.total) return;
      lastProgress = now;
      send({ type: 'progress', progress });
    },
    log: {
      info: (message) => send({ type: 'log', level: 'info', message }),
      warn: (message) => send({ type: 'log', level: 'warn', message }),
    },
  };
  await stage.run(ctx);
}

main().then(
  () => exit(0),
  (e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    send({ type: 'error', message: err.message, stack: err.stack });
    return exit(1);
  },
);
