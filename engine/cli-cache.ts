// The cache's commands on the command line: checkout, gc, push / pull / fetch, remote, status --remote.
// The work is in cache-commands.ts; this file parses, prints and picks exit codes.

import path from 'node:path';
import type { Command } from 'commander';
import { type CommonOpts, common, EXIT, kb, positiveInt, say, withWorkspaceLock } from './cli-session.ts';
import { PipelineError } from './failure.ts';
import { openRemote, readProjectConfig } from './remote.ts';
import type { Pipeline } from './types.ts';
import type { Workspace } from './workspace.ts';

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

export async function remoteStatusCommand(
  ws: Workspace,
  targets: string[],
  o: CommonOpts & { remote?: string | boolean },
): Promise<number> {
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

/** Add checkout, gc, push, pull, fetch and remote to `program`; `setCode` receives the exit code. */
export function registerCacheCommands(program: Command, pipeline: Pipeline, setCode: (code: number) => void): void {
  common(program.command('checkout').argument('[stages...]', 'stages (default: all)'))
    .description('make the workspace outs match pipeline.lock, from the cache')
    .option('--no-wait', 'fail at once if another run holds the workspace')
    .action(async (targets: string[], o) => {
      setCode(await checkoutCommand(pipeline, targets, o));
    });
  common(program.command('gc'))
    .description('remove cache objects that neither the lock nor kept run-cache entries need')
    .option('-n, --dry-run', 'say what would go, and how many bytes')
    .option('--keep-runs <n>', 'keep the newest N run-cache entries per stage (default: those of the last 30 days)')
    .option('--all-commits', 'also keep what every committed pipeline.lock needs')
    .option('--no-wait', 'fail at once if another run holds the workspace')
    .action(async (o) => {
      setCode(await gcCommand(pipeline, o));
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
        setCode(await transferCommand(kind, pipeline, targets, o));
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
      setCode(await remoteCommand(pipeline, action, args, o));
    });
}
