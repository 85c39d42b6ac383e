// The command line: the only module that touches process.argv, signals, stdout and exit codes.
// Exit codes: 0 success, 1 a stage failed, 2 a usage or pipeline-definition error, 130 interrupted.

import { realpathSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { renderAscii, renderDot, renderMermaid } from './dag-render.ts';
import type { Event, Logger } from './events.ts';
import { describeFailure, isDefinitionFailure, PipelineError } from './failure.ts';
import { selectStages } from './graph.ts';
import { openRemote, readProjectConfig } from './remote.ts';
import { describeReason } from './status.ts';
import type { Pipeline } from './types.ts';
import { computeStatus, openWorkspace, type Workspace } from './workspace.ts';

export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

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

interface CommonOpts {
  configName: string;
  set: string[];
  json?: boolean;
  verbose?: boolean;
}

const collect = (v: string, acc: string[]) => [...acc, v];

function common(cmd: Command): Command {
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

function open(pipeline: Pipeline, o: CommonOpts) {
  return openWorkspace({ root: path.dirname(pipeline.file), pipeline, configName: o.configName, sets: o.set });
}

const jsonLogger: Logger = (e: Event) => process.stdout.write(`${JSON.stringify(e)}\n`);

interface Session {
  ws: Workspace;
  emit: Logger;
  signal: AbortSignal;
}

/**
 * Open the workspace for a command that changes it (run, checkout, pull, gc): Ctrl-C aborts its signal,
 * and it holds the workspace's run lock, waiting for another holder unless --no-wait.
 */
async function withWorkspaceLock(
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

const positiveInt = (v: unknown, flag: string, fallback: number): number => {
  const n = Number(v ?? fallback);
  if (!Number.isInteger(n) || n < 1) {
    throw new PipelineError({
      reason: 'invalid-definition',
      message: `${flag} must be a positive integer, not '${v}'`,
    });
  }
  return n;
};

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

const kb = (n: number) =>
  n < 1e6 ? `${(n / 1e3).toFixed(1)} kB` : n < 1e9 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e9).toFixed(2)} GB`;

function say(o: CommonOpts, data: unknown, text: string): void {
  process.stdout.write(o.json ? `${JSON.stringify(data)}\n` : `${text}\n`);
}

async function checkoutCommand(pipeline: Pipeline, targets: string[], o: CommonOpts): Promise<number> {
  const { checkout } = await import('./cache-commands.ts');
  return withWorkspaceLock(pipeline, o, async ({ ws }) => {
    const r = await checkout(ws, targets);
    const lines = [
      ...r.restored.map((p) => `restored ${p} (${ws.cache.linkKind})`),
      ...r.failed.map((f) => `cannot restore ${f.path}: ${f.error}`),
      `${r.restored.length} restored, ${r.unchanged.length} already matching, ${r.failed.length} failed`,
    ];
    say(o, r, lines.join('\n'));
    return r.failed.length > 0 ? EXIT.failed : EXIT.ok;
  });
}

async function gcCommand(pipeline: Pipeline, o: CommonOpts & Record<string, unknown>): Promise<number> {
  const { gc } = await import('./cache-commands.ts');
  return withWorkspaceLock(pipeline, o, async ({ ws }) => {
    const keepRuns = o.keepRuns !== undefined ? Number(o.keepRuns) : undefined;
    if (keepRuns !== undefined && (!Number.isInteger(keepRuns) || keepRuns < 0)) {
      throw new PipelineError({
        reason: 'invalid-definition',
        message: `--keep-runs must be a whole number, not '${o.keepRuns}'`,
      });
    }
    const r = await gc(ws, { dryRun: Boolean(o.dryRun), keepRuns, allCommits: Boolean(o.allCommits) });
    const verb = o.dryRun ? 'would remove' : 'removed';
    say(o, r, `${verb} ${r.removed} objects (${kb(r.bytes)}) and ${r.runsRemoved} run-cache entries; kept ${r.kept}`);
    return EXIT.ok;
  });
}

async function transferCommand(
  kind: 'push' | 'pull' | 'fetch',
  pipeline: Pipeline,
  targets: string[],
  o: CommonOpts & Record<string, unknown>,
): Promise<number> {
  const { checkout, fetchCommand, pushCommand } = await import('./cache-commands.ts');
  return withWorkspaceLock(pipeline, o, async ({ ws, emit, signal }) => {
    const remote = await openRemote(ws.root, o.remote as string | undefined);
    const opts = { jobs: positiveInt(o.jobs, '--jobs', 8), emit, signal };
    const r =
      kind === 'push' ? await pushCommand(ws, remote, targets, opts) : await fetchCommand(ws, remote, targets, opts);
    const lines = [
      `${kind}: ${r.transferred} objects (${kb(r.bytes)}) ${kind === 'push' ? 'to' : 'from'} '${remote.name}', ${r.skipped} already there`,
      ...r.failed.slice(0, 5).map((f) => `  failed ${f.key}: ${f.error}`),
    ];
    const notCached = 'notCached' in r ? (r.notCached as string[]) : [];
    if (notCached.length > 0) lines.push(`not in the local cache (run them first): ${notCached.join(', ')}`);
    let failed = r.failed.length > 0 || signal.aborted;
    if (kind === 'pull' && !failed) {
      const c = await checkout(ws, targets);
      lines.push(
        `checkout: ${c.restored.length} restored, ${c.unchanged.length} already matching, ${c.failed.length} failed`,
      );
      for (const f of c.failed) lines.push(`  cannot restore ${f.path}: ${f.error}`);
      failed = c.failed.length > 0;
    }
    say(o, r, lines.join('\n'));
    return signal.aborted ? EXIT.interrupted : failed ? EXIT.failed : EXIT.ok;
  });
}

async function remoteCommand(
  pipeline: Pipeline,
  action: string,
  args: string[],
  o: Record<string, unknown>,
): Promise<number> {
  const { remoteAdd, remoteRemove } = await import('./cache-commands.ts');
  const root = path.dirname(pipeline.file);
  if (action === 'add') {
    const [name, url] = args;
    if (!name || !url)
      throw new PipelineError({ reason: 'invalid-definition', message: 'usage: pipeline remote add NAME URL' });
    remoteAdd(
      root,
      name,
      {
        url,
        endpoint: o.endpoint as string | undefined,
        region: o.region as string | undefined,
        path_style: o.pathStyle ? true : undefined,
      },
      Boolean(o.default),
    );
    process.stdout.write(`remote '${name}' -> ${url} (saved in .pipeline/config.yaml; commit it)\n`);
  } else if (action === 'remove') {
    remoteRemove(root, args[0]);
  } else if (action === 'list') {
    const config = readProjectConfig(root);
    for (const [n, rc] of Object.entries(config.remotes)) {
      process.stdout.write(
        `${n === config.default ? '*' : ' '} ${n}  ${rc.url}${rc.endpoint ? `  (endpoint ${rc.endpoint})` : ''}\n`,
      );
    }
  } else
    throw new PipelineError({
      reason: 'invalid-definition',
      message: `unknown remote action '${action}': add, list or remove`,
    });
  return EXIT.ok;
}

async function statusCommand(
  pipeline: Pipeline,
  targets: string[],
  o: CommonOpts & { remote?: string | boolean },
): Promise<number> {
  const ws = open(pipeline, o);
  if (o.remote) {
    const { remoteStatus } = await import('./cache-commands.ts');
    const remote = await openRemote(ws.root, typeof o.remote === 'string' ? o.remote : undefined);
    const rows = await remoteStatus(ws, remote, targets);
    const text = rows.map((r) => {
      const where =
        r.local === r.total && r.remote === r.total
          ? 'in sync'
          : r.remote < r.total && r.local === r.total
            ? 'local only (push)'
            : r.local < r.total && r.remote === r.total
              ? 'remote only (pull)'
              : 'incomplete';
      return `${r.stage}: ${r.local}/${r.total} objects local, ${r.remote}/${r.total} on '${remote.name}': ${where}`;
    });
    say(o, { remote: remote.name, stages: rows }, text.join('\n') || 'no stage has run yet');
    return EXIT.ok;
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
  common(program.command('checkout').argument('[stages...]', 'stages (default: all)'))
    .description('make the workspace outs match pipeline.lock, from the cache')
    .option('--no-wait', 'fail at once if another run holds the workspace')
    .action(async (targets: string[], o) => {
      code = await checkoutCommand(pipeline, targets, o);
    });
  common(program.command('gc'))
    .description('remove cache objects that neither the lock nor kept run-cache entries need')
    .option('-n, --dry-run', 'say what would go, and how many bytes')
    .option('--keep-runs <n>', 'keep the newest N run-cache entries per stage (default: those of the last 30 days)')
    .option('--all-commits', 'also keep what every committed pipeline.lock needs')
    .option('--no-wait', 'fail at once if another run holds the workspace')
    .action(async (o) => {
      code = await gcCommand(pipeline, o);
    });
  for (const [kind, what] of [
    ['push', 'upload the outs in pipeline.lock (and their run-cache entries) to a remote'],
    ['pull', 'download the outs in pipeline.lock from a remote, then check them out'],
    ['fetch', 'download the outs in pipeline.lock from a remote into the cache only'],
  ] as const) {
    common(program.command(kind).argument('[stages...]', 'stages (default: all)'))
      .description(what)
      .option('-r, --remote <name>', 'which remote (default: the default remote)')
      .option('-j, --jobs <n>', 'transfers at once', '8')
      .option('--no-wait', 'fail at once if another run holds the workspace')
      .action(async (targets: string[], o) => {
        code = await transferCommand(kind, pipeline, targets, o);
      });
  }
  program
    .command('remote')
    .argument('<action>', 'add NAME URL | list | remove NAME')
    .argument('[args...]')
    .description('configure remotes (.pipeline/config.yaml): a folder, file://… or s3://bucket/prefix')
    .option('--endpoint <url>', 'S3: custom endpoint (MinIO, R2, GCS)')
    .option('--region <region>', 'S3: region')
    .option('--path-style', 'S3: path-style addressing')
    .option('--default', 'make it the default remote')
    .action(async (action: string, args: string[], o) => {
      code = await remoteCommand(pipeline, action, args, o);
    });
  common(program.command('dag'))
    .description('print the stage graph')
    .option('--mermaid', 'as a Mermaid flowchart')
    .option('--dot', 'as Graphviz dot')
    .action((o) => {
      code = dagCommand(pipeline, o);
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
