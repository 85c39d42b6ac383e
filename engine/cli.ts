// The command line: with cli-session.ts and cli-cache.ts, the only code that touches process.argv,
// signals, stdout and exit codes. Exit codes: 0 success, 1 a stage failed, 2 a usage or
// pipeline-definition error, 130 interrupted.

import { realpathSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { registerCacheCommands } from './cli-cache.ts';
import { registerExpCommands } from './cli-exp.ts';
import { type CommonOpts, common, EXIT, open, positiveInt, withWorkspaceLock } from './cli-session.ts';
import { renderAscii, renderDot, renderMermaid } from './dag-render.ts';
import { describeFailure, isDefinitionFailure, PipelineError } from './failure.ts';
import { selectStages } from './graph.ts';
import { openRemote } from './remote.ts';
import { describeReason } from './status.ts';
import type { Pipeline } from './types.ts';
import { computeStatus } from './workspace.ts';

export { EXIT };

let commandStarted = false;
let finished = false;

function fail(e: unknown): never {
  if (e instanceof PipelineError) {
    process.stderr.write(`error: ${e.message}\n`);
    process.exit(isDefinitionFailure(e.failure) || e.failure.reason === 'locked' ? EXIT.usage : EXIT.failed);
  }
  const err = e instanceof Error ? e : new Error(String(e));
  process.stderr.write(
    commandStarted
      ? `internal error: ${err.stack}\n`
      : `error: the pipeline definition threw while loading: ${err.stack}\nFix pipeline.ts (or the module named above) and rerun.\n`,
  );
  process.exit(commandStarted ? EXIT.failed : EXIT.usage);
}

// A pipeline.ts that throws while it is being evaluated never reaches runIfMain: catch it here, since
// this module is evaluated before the pipeline's own body. Worker processes handle their own errors.
if (!process.env.PIPELINE_WORKER) process.on('uncaughtException', fail);

async function runCommand(
  pipeline: Pipeline,
  targets: string[],
  o: CommonOpts & Record<string, unknown>,
): Promise<number> {
  const { runPipeline } = await import('./executor.ts');
  return withWorkspaceLock(pipeline, o, async ({ ws, emit, signal }) => {
    const jobs = positiveInt(o.jobs, '--jobs', availableParallelism());
    const remote = o.pull || o.push ? await openRemote(ws.root, o.remote as string | undefined) : undefined;
    const result = await runPipeline(ws, {
      targets,
      jobs,
      force: Boolean(o.force),
      dryRun: Boolean(o.dryRun),
      keepGoing: Boolean(o.keepGoing),
      downstream: Boolean(o.downstream),
      signal,
      emit,
      runCache: o.runCache !== false,
      pullFrom: o.pull ? remote : undefined,
      pushTo: o.push ? remote : undefined,
    });
    return result.interrupted ? EXIT.interrupted : result.failed ? EXIT.failed : EXIT.ok;
  });
}

async function statusCommand(
  pipeline: Pipeline,
  targets: string[],
  o: CommonOpts & { remote?: string | boolean },
): Promise<number> {
  const ws = open(pipeline, o);
  if (o.remote) {
    const { remoteStatusCommand } = await import('./cli-cache.ts');
    return remoteStatusCommand(ws, targets, o);
  }
  const status = await computeStatus(ws, selectStages(ws.graph, targets));
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ stages: status })}\n`);
    return EXIT.ok;
  }
  const width = Math.max(0, ...status.map((s) => s.name.length));
  for (const s of status) {
    process.stdout.write(`${s.name.padEnd(width)}  ${s.state}${s.restorable ? ' (restorable)' : ''}\n`);
    for (const r of s.reasons)
      if (r.kind !== 'never-run') process.stdout.write(`${' '.repeat(width)}    ${describeReason(r)}\n`);
  }
  const stale = status.filter((s) => s.state !== 'fresh').length;
  process.stdout.write(
    status.length === 0
      ? 'no stages declared\n'
      : stale === 0
        ? `all ${status.length} stages are up to date\n`
        : `${stale} of ${status.length} stages need to run: \`pipeline run\`\n`,
  );
  return EXIT.ok;
}

function dagCommand(pipeline: Pipeline, o: CommonOpts & { mermaid?: boolean; dot?: boolean }): number {
  const ws = open(pipeline, o);
  const g = ws.graph;
  if (o.json) {
    const stages = g.stages.map((s) => ({
      name: s.name,
      deps: s.deps,
      outs: s.outs,
      upstream: s.upstream,
      params: s.stage.params ?? [],
    }));
    process.stdout.write(`${JSON.stringify({ stages })}\n`);
  } else process.stdout.write(`${o.mermaid ? renderMermaid(g) : o.dot ? renderDot(g) : renderAscii(g)}\n`);
  return EXIT.ok;
}

/** Parse argv and run one command against `pipeline`. Resolves to the exit code. */
export async function cli(pipeline: Pipeline, argv: string[]): Promise<number> {
  commandStarted = true;
  let code: number = EXIT.ok;
  const program = new Command('pipeline')
    .description('a content-hashed pipeline (DAG) runner: brings stages up to date and explains why they ran')
    .exitOverride()
    .showSuggestionAfterError();
  common(program.command('run').argument('[stages...]', 'targets (default: all)'))
    .description('bring the targets and what they need up to date')
    .addOption(new Option('-j, --jobs <n>', 'stages to run at once (default: cores)'))
    .option('-f, --force', 'run the selected stages even if fresh')
    .option('-n, --dry-run', 'print the plan and why, run nothing')
    .option('-k, --keep-going', 'after a failure, still run the stages that do not depend on it')
    .option('--downstream', 'the targets and every stage downstream of them')
    .option('--no-wait', 'fail at once if another run holds the workspace')
    .option('--no-run-cache', 'run stale stages even when their outs for these inputs are in the cache')
    .option('--pull', "also look up the remote's run-cache before running a stage")
    .option('--push', "upload each stage's outs and run entry after it succeeds")
    .option('-r, --remote <name>', 'the remote for --pull / --push (default: the default remote)')
    .action(async (targets: string[], o) => {
      code = await runCommand(pipeline, targets, o);
    });
  common(program.command('status').argument('[stages...]', 'stages to report (default: all)'))
    .description('say which stages are stale and exactly why')
    .option('--remote [name]', 'instead: which outs are local only / remote only')
    .action(async (targets: string[], o) => {
      code = await statusCommand(pipeline, targets, o);
    });
  common(program.command('watch').argument('[stages...]', 'targets (default: all)'))
    .description('keep the targets up to date: rerun what each saved change makes stale, until Ctrl-C')
    .option('--debounce <ms>', 'quiet time after a change before running', '200')
    .addOption(new Option('-j, --jobs <n>', 'stages to run at once (default: cores)'))
    .option('-k, --keep-going', 'after a failure, still run the stages that do not depend on it')
    .option('--no-run-cache', 'run stale stages even when their outs for these inputs are in the cache')
    .action(async (targets: string[], o) => {
      const { watchCommand } = await import('./watch-cli.ts');
      code = await watchCommand(pipeline, targets, o);
    });
  registerCacheCommands(program, pipeline, (c) => {
    code = c;
  });
  common(program.command('dag'))
    .description('print the stage graph')
    .option('--mermaid', 'as a Mermaid flowchart')
    .option('--dot', 'as Graphviz dot')
    .action((o) => {
      code = dagCommand(pipeline, o);
    });
  registerExpCommands(program, pipeline, (c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help'
        ? EXIT.ok
        : EXIT.usage;
    }
    if (e instanceof PipelineError) {
      process.stderr.write(`error: ${describeFailure(e.failure)}\n`);
      return isDefinitionFailure(e.failure) || e.failure.reason === 'locked' ? EXIT.usage : EXIT.failed;
    }
    throw e;
  }
  return code;
}

/** Run the CLI when `moduleUrl` (pass `import.meta.url` from pipeline.ts) is the program's entry point. */
export async function runIfMain(moduleUrl: string, pipeline: Pipeline): Promise<void> {
  const entry = process.argv[1];
  if (!entry || process.env.PIPELINE_WORKER) return;
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return p;
    }
  };
  if (real(path.resolve(entry)) !== real(fileURLToPath(moduleUrl))) return;
  await runCli(pipeline, process.argv.slice(2));
}

/**
 * Run the CLI and exit with its code. If the event loop ever empties while the command is still
 * waiting (a promise that can never settle: an engine bug), say so and exit 1 instead of a silent 0.
 */
async function runCli(pipeline: Pipeline, argv: string[]): Promise<never> {
  process.on('exit', (code) => {
    if (code === 0 && !finished) {
      process.stderr.write('internal error: the command stopped before finishing (nothing left to wait for)\n');
      process.exitCode = EXIT.failed;
    }
  });
  const code = await cli(pipeline, argv).catch(fail);
  finished = true;
  process.exit(code);
}

/** For the `pipeline` bin: import the project's pipeline file, then run the CLI on it. */
export async function runFile(file: string, argv: string[]): Promise<never> {
  let pipeline: Pipeline | undefined;
  try {
    const mod = await import(pathToFileURL(path.resolve(file)).href);
    pipeline = mod.default ?? mod.pipeline;
  } catch (e) {
    if (
      (e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' &&
      String((e as Error).message).includes(path.resolve(file))
    ) {
      process.stderr.write(`error: no ${file} here: run \`pipeline\` in a project root, or pass --file\n`);
      process.exit(EXIT.usage);
    }
    fail(e);
  }
  if (!pipeline?.stages) {
    process.stderr.write(`error: ${file} must \`export default definePipeline([...])\`\n`);
    process.exit(EXIT.usage);
  }
  return runCli(pipeline, argv);
}
