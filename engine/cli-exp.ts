// The experiment commands on the command line: exp run / sweep / show / diff / apply, metrics show / diff,
// params diff. The work is in experiments.ts, exp-sweep.ts, exp-compare.ts and metrics-read.ts; this file
// parses, prints, handles Ctrl-C and picks exit codes.

import path from 'node:path';
import type { Command } from 'commander';
import { type CommonOpts, common, EXIT, open, positiveInt } from './cli-session.ts';
import { PipelineError } from './failure.ts';
import type { Pipeline } from './types.ts';

type Opts = CommonOpts & Record<string, unknown>;
const rootOf = (pipeline: Pipeline) => path.dirname(pipeline.file);
const write = (text: string) => process.stdout.write(`${text}\n`);
const json = (data: unknown) => write(JSON.stringify(data));

/** Ctrl-C / SIGTERM abort the returned signal (once); the children stop themselves and we exit 130. */
function interruptible(onFirst: (sig: string) => void): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const handler = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    onFirst(sig);
    controller.abort();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

async function expRunCommand(pipeline: Pipeline, targets: string[], o: Opts): Promise<number> {
  const [{ selectStages }, exp, { expView }] = await Promise.all([
    import('./graph.ts'),
    import('./experiments.ts'),
    import('./exp-render.ts'),
  ]);
  // Opening the workspace checks the config and every --set (nearest key suggested) before anything runs.
  const ws = open(pipeline, o);
  selectStages(ws.graph, targets);
  const overrides = exp.parseSets(o.set);
  const name = (o.name as string | undefined) ?? exp.generatedName(o.configName, overrides, targets);
  exp.checkName(name);
  const prev = exp.readExperiment(ws.root, name);
  if (prev && !o.force) {
    throw new PipelineError({
      reason: 'invalid-definition',
      message: `experiment '${name}' exists (${prev.status}, ${prev.created}): --force to run it again, or --name another name`,
    });
  }
  const view = o.json ? undefined : expView({ out: process.stdout, verbose: Boolean(o.verbose), single: true });
  const { signal, dispose } = interruptible(() => undefined);
  try {
    exp.warnUnshared(ws.root, ws.graph, view ? view.emit : json);
    const r = await exp.runExperiment({
      root: ws.root,
      pipeline,
      graph: ws.graph,
      name,
      configName: o.configName,
      sets: o.set,
      targets,
      keep: Boolean(o.keep),
      signal,
      emit: view ? view.emit : json,
    });
    if (view && r.record) {
      write(`recorded in .pipeline/experiments/${name}.json; the workspace's outs and pipeline.lock are unchanged`);
      if (r.record.workspace) write(`its workspace is kept in ${r.record.workspace}`);
      if (r.record.status === 'success')
        write(`compare: \`pipeline exp show\`; adopt it: \`pipeline exp apply ${name}\``);
    }
    return r.interrupted ? EXIT.interrupted : r.exitCode === 0 ? EXIT.ok : r.exitCode === 2 ? EXIT.usage : EXIT.failed;
  } finally {
    dispose();
  }
}

async function expSweepCommand(pipeline: Pipeline, file: string, o: Opts): Promise<number> {
  const [sweepFile, sweep, { expView, groupsTable, fmtSeconds }] = await Promise.all([
    import('./exp-sweep-file.ts'),
    import('./exp-sweep.ts'),
    import('./exp-render.ts'),
  ]);
  const root = rootOf(pipeline);
  const spec = sweepFile.parseSweepFile(file, root);
  const configName = (o.configName as string | undefined) ?? spec.configName ?? 'default';
  const ws = open(pipeline, { ...o, configName });
  sweepFile.checkSweepKeys(spec, ws.config.tree);
  const jobs = positiveInt(o.jobs, '--jobs', 2);
  // The report's metric columns, when it names them, are the ones worth a line here too.
  const wanted = spec.report.options.metrics;
  const chosen = Array.isArray(wanted) && wanted.every((m) => typeof m === 'string') ? wanted : undefined;
  const view = o.json
    ? undefined
    : expView({ out: process.stdout, verbose: Boolean(o.verbose), single: false, metrics: chosen });
  const { signal, dispose } = interruptible((sig) => {
    if (view) {
      view.emit({
        type: 'exp-warning',
        message: `${sig}: stopping the running experiments (nothing is recorded for them); finished ones stay recorded`,
      });
    }
  });
  try {
    const result = await sweep.runSweep({
      root,
      pipeline,
      graph: ws.graph,
      spec,
      configName,
      extraSets: o.set,
      jobs,
      force: Boolean(o.force),
      signal,
      emit: view ? view.emit : (e) => (e.type !== 'exp-run-event' || o.verbose ? json(e) : undefined),
    });
    view?.stop();
    const groups = sweep.groupRows(result.rows, spec.repeatKeys);
    const count = (s: string) => result.experiments.filter((e) => e.status === s).length;
    if (o.json) {
      json({
        type: 'sweep-summary',
        ...result,
        experiments: result.experiments.map(({ record, ...e }) => ({ ...e, metrics: record?.metrics })),
        groups,
      });
    } else {
      if (groups.length > 0) write(`\n${groupsTable(groups, Boolean(process.stdout.isTTY), chosen)}\n`);
      write(
        `sweep ${spec.name}${result.interrupted ? ' interrupted' : ''}: ${count('success')} ran, ${count('skipped')} skipped (done), ${count('failed')} failed${result.interrupted ? `, ${count('interrupted')} not finished` : ''} in ${fmtSeconds(result.seconds)}`,
      );
      write(`rows: ${result.rowsFile}`);
      if (result.report.length > 0) write(`report: ${result.report.join(', ')}`);
      if (count('failed') > 0)
        write(
          `failed: ${result.experiments
            .filter((e) => e.status === 'failed')
            .map((e) => e.name)
            .join(', ')}`,
        );
    }
    return result.interrupted ? EXIT.interrupted : result.failed > 0 ? EXIT.failed : EXIT.ok;
  } finally {
    dispose();
  }
}

const csvCell = (v: string) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

async function expShowCommand(pipeline: Pipeline, o: Opts): Promise<number> {
  const [{ listExperiments }, { showTable }, { fmtValue, table }] = await Promise.all([
    import('./experiments.ts'),
    import('./exp-compare.ts'),
    import('./exp-render.ts'),
  ]);
  let records = listExperiments(rootOf(pipeline));
  if (o.sweep) {
    const sweeps = [...new Set(records.map((r) => r.sweep).filter(Boolean))];
    records = records.filter((r) => r.sweep === o.sweep);
    if (records.length === 0) {
      throw new PipelineError({
        reason: 'invalid-definition',
        message: `no experiments of sweep '${o.sweep}'. Sweeps: ${sweeps.join(', ') || 'none yet'}`,
      });
    }
  }
  const t = showTable(records, { sort: o.sort as string | undefined, descending: Boolean(o.desc) && !o.asc });
  if (o.json) {
    json({ params: t.params, metrics: t.metrics, experiments: t.rows });
    return EXIT.ok;
  }
  const headers = ['experiment', 'status', ...t.params, ...t.metrics];
  const cells = t.rows.map((r) => [
    r.name,
    r.status,
    ...t.params.map((k) => fmtValue(r.params[k])),
    ...t.metrics.map((k) => fmtValue(r.metrics[k])),
  ]);
  if (o.csv) {
    const exact = t.rows.map((r) => [
      r.name,
      r.status,
      ...t.params.map((k) =>
        r.params[k] === undefined
          ? ''
          : typeof r.params[k] === 'string'
            ? String(r.params[k])
            : JSON.stringify(r.params[k]),
      ),
      ...t.metrics.map((k) => (r.metrics[k] === undefined ? '' : String(r.metrics[k]))),
    ]);
    for (const row of [headers, ...exact]) write(row.map(csvCell).join(','));
    return EXIT.ok;
  }
  if (records.length === 0) {
    write('no experiments yet: `pipeline exp run --set key=value`, or `pipeline exp sweep FILE`');
    return EXIT.ok;
  }
  write(table(headers, cells, Boolean(process.stdout.isTTY)));
  return EXIT.ok;
}

async function expDiffCommand(pipeline: Pipeline, a: string, b: string, o: Opts): Promise<number> {
  const [{ getExperiment }, { diffExperiments }, { fmtDelta, fmtValue, table }] = await Promise.all([
    import('./experiments.ts'),
    import('./exp-compare.ts'),
    import('./exp-render.ts'),
  ]);
  const root = rootOf(pipeline);
  const d = diffExperiments(getExperiment(root, a), getExperiment(root, b), Boolean(o.all));
  if (o.json) {
    json(d);
    return EXIT.ok;
  }
  const tty = Boolean(process.stdout.isTTY);
  const parts: string[] = [];
  if (d.params.length > 0)
    parts.push(
      table(
        ['param', a, b],
        d.params.map((c) => [c.key, fmtValue(c.old), fmtValue(c.new)]),
        tty,
      ),
    );
  if (d.metrics.length > 0) {
    parts.push(
      table(
        ['metric', a, b, 'change'],
        d.metrics.map((c) => [c.key, fmtValue(c.old), fmtValue(c.new), fmtDelta(c.delta)]),
        tty,
      ),
    );
  }
  write(parts.join('\n\n') || `${a} and ${b} have the same params and metrics`);
  return EXIT.ok;
}

async function expApplyCommand(pipeline: Pipeline, name: string, o: Opts): Promise<number> {
  const [{ getExperiment }, { applyExperiment }, { Cache }, { fmtValue }] = await Promise.all([
    import('./experiments.ts'),
    import('./exp-compare.ts'),
    import('./cache.ts'),
    import('./exp-render.ts'),
  ]);
  const root = rootOf(pipeline);
  const rec = getExperiment(root, name);
  const r = applyExperiment(root, rec);
  // Whether `run` will restore rather than compute: each of its stages' run-cache entries is still there.
  const cache = new Cache(root);
  const missing = Object.entries(rec.stages)
    .filter(([stage, s]) => s.fingerprint && !cache.readRun(stage, s.fingerprint))
    .map(([stage]) => stage);
  if (o.json) {
    json({ experiment: name, ...r, restorable: missing.length === 0, notInRunCache: missing });
    return EXIT.ok;
  }
  const lines = r.changed.length
    ? [`${r.file}: ${r.changed.map((c) => `${c.key} ${fmtValue(c.old)} -> ${fmtValue(c.new)}`).join(', ')}`]
    : [`${r.file} already has ${name}'s config`];
  if (rec.status !== 'success')
    lines.push(`note: experiment '${name}' failed (${rec.error}); its config is applied anyway`);
  lines.push(
    missing.length === 0
      ? `run \`pipeline run\` to restore its results from the cache`
      : `run \`pipeline run\`: ${missing.join(', ')} will run (their run-cache entries are gone, after gc?), the rest restore from the cache`,
  );
  write(lines.join('\n'));
  return EXIT.ok;
}

async function metricsShowCommand(pipeline: Pipeline, o: Opts): Promise<number> {
  const [m, { fmtValue, table }] = await Promise.all([import('./metrics-read.ts'), import('./exp-render.ts')]);
  const ws = open(pipeline, o);
  const paths = m.metricsPaths(ws.graph);
  const perFile = m.readWorkspaceMetrics(ws.root, paths);
  if (o.json) {
    json({ metrics: perFile });
    return EXIT.ok;
  }
  if (paths.length === 0)
    write("no metrics outs declared: give a stage an out { path, role: 'metrics' } (a JSON file)");
  else if (Object.keys(perFile).length === 0) write(`no metrics yet (${paths.join(', ')}): \`pipeline run\``);
  for (const [file, values] of Object.entries(perFile)) {
    const rows = table(
      ['metric', 'value'],
      Object.entries(values).map(([k, v]) => [k, fmtValue(v)]),
    );
    write(`${file}\n${rows.replace(/^/gm, '  ')}`);
  }
  return EXIT.ok;
}

async function metricsDiffCommand(pipeline: Pipeline, rev: string, o: Opts): Promise<number> {
  const [m, { fmtDelta, fmtValue, table }] = await Promise.all([
    import('./metrics-read.ts'),
    import('./exp-render.ts'),
  ]);
  const ws = open(pipeline, o);
  const paths = m.metricsPaths(ws.graph);
  const then = m.readLockedMetrics(ws.cache, await m.lockAtRevision(ws.root, rev), paths);
  const now = m.readWorkspaceMetrics(ws.root, paths);
  const changes = paths.flatMap((p) =>
    m.compareFlat(then.metrics[p] ?? {}, now[p] ?? {}, Boolean(o.all)).map((c) => ({ path: p, ...c })),
  );
  const hint =
    then.missing.length > 0
      ? `${then.missing.join(', ')} at ${rev}: not in the local cache; \`pipeline fetch\` (or \`pull\`) on a checkout of ${rev} brings it`
      : undefined;
  if (o.json) json({ rev, metrics: changes, missing: then.missing });
  else {
    if (changes.length > 0) {
      write(
        table(
          ['path', 'metric', rev, 'workspace', 'change'],
          changes.map((c) => [c.path, c.key, fmtValue(c.old), fmtValue(c.new), fmtDelta(c.delta)]),
          Boolean(process.stdout.isTTY),
        ),
      );
    } else if (!hint) write(`metrics are the same as at ${rev}`);
    if (hint) process.stderr.write(`error: ${hint}\n`);
  }
  return hint ? EXIT.failed : EXIT.ok;
}

async function paramsDiffCommand(pipeline: Pipeline, rev: string, o: Opts): Promise<number> {
  const [m, { fmtValue, table }] = await Promise.all([import('./metrics-read.ts'), import('./exp-render.ts')]);
  const ws = open(pipeline, o);
  const before = m.lockParams(await m.lockAtRevision(ws.root, rev));
  const current: Record<string, unknown> = {};
  for (const s of ws.graph.stages) Object.assign(current, Object.fromEntries(ws.fingerprinter.params(s)));
  const changes = m.compareFlat(before, m.sortKeys(current), Boolean(o.all));
  const against = `configs/${o.configName}.yaml${o.set.length > 0 ? ` + ${o.set.map((s) => `--set ${s}`).join(' ')}` : ''}`;
  if (o.json) {
    json({ rev, against: { config: o.configName, sets: o.set }, params: changes });
    return EXIT.ok;
  }
  write(`params recorded in pipeline.lock at ${rev} -> the current config (${against})`);
  write(
    changes.length > 0
      ? table(
          ['param', rev, 'current'],
          changes.map((c) => [c.key, fmtValue(c.old), fmtValue(c.new)]),
          Boolean(process.stdout.isTTY),
        )
      : 'no param differs',
  );
  return EXIT.ok;
}

/** Add `exp`, `metrics` and `params` to `program`; `setCode` receives the exit code. */
export function registerExpCommands(program: Command, pipeline: Pipeline, setCode: (code: number) => void): void {
  const exp = program
    .command('exp')
    .description('experiments: the pipeline with overrides, in workspaces of their own, recorded and compared');
  common(exp.command('run').argument('[stages...]', 'targets (default: all)'))
    .description("run the pipeline with --set overrides without touching the workspace's outs or lock; record it")
    .option('--name <name>', 'the experiment name (default: exp- + a hash of the overrides)')
    .option('-f, --force', 'replace an experiment of the same name')
    .option('--keep', 'keep its workspace (.pipeline/exp/ws-<name>) afterwards')
    .action(async (targets: string[], o) => {
      setCode(await expRunCommand(pipeline, targets, o));
    });
  exp
    .command('sweep')
    .argument('<file>', 'sweep YAML: name, base, grid or list, repeats, report')
    .description('run the experiments a sweep file describes, a few at a time; skips those already done')
    .option('-j, --jobs <n>', 'experiments at once (after the first, which runs alone)', '2')
    .option('-f, --force', 'rerun experiments already done')
    .option('--config-name <name>', "config to use (default: the file's `config`, else default)")
    .option(
      '--set <key=value>',
      'override for every experiment; repeatable',
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    .option('--json', 'machine-readable output')
    .option('-v, --verbose', "show each experiment's stages")
    .action(async (file: string, o) => {
      setCode(await expSweepCommand(pipeline, file, o));
    });
  exp
    .command('show')
    .description('a table of the experiments: the params that differ between them, and their metrics')
    .option('--sort <key>', 'sort by a metric or param key (or name, created, status)')
    .option('--desc', 'highest first')
    .option('--asc', 'lowest first (the default)')
    .option('--sweep <name>', "only this sweep's experiments")
    .option('--csv', 'as CSV')
    .option('--json', 'machine-readable output')
    .action(async (o) => {
      setCode(await expShowCommand(pipeline, o));
    });
  exp
    .command('diff')
    .argument('<a>', 'an experiment')
    .argument('<b>', 'another')
    .description('the params and metrics that differ between two experiments')
    .option('--all', 'every param and metric, not only those that differ')
    .option('--json', 'machine-readable output')
    .action(async (a: string, b: string, o) => {
      setCode(await expDiffCommand(pipeline, a, b, o));
    });
  exp
    .command('apply')
    .argument('<name>', 'an experiment')
    .description("write an experiment's overrides into its config file (comments kept); `run` then restores it")
    .option('--json', 'machine-readable output')
    .action(async (name: string, o) => {
      setCode(await expApplyCommand(pipeline, name, o));
    });

  const metrics = program.command('metrics').description("the workspace's metrics outs (role: 'metrics')");
  common(metrics.command('show'))
    .description('the metrics files, flattened to dotted keys')
    .action(async (o) => {
      setCode(await metricsShowCommand(pipeline, o));
    });
  common(metrics.command('diff').argument('[rev]', 'a git revision', 'HEAD'))
    .description("compare the workspace's metrics with those pipeline.lock records at a git revision")
    .option('--all', 'every metric, not only those that changed')
    .action(async (rev: string, o) => {
      setCode(await metricsDiffCommand(pipeline, rev, o));
    });
  const params = program.command('params').description('the config keys the stages read');
  common(params.command('diff').argument('[rev]', 'a git revision', 'HEAD'))
    .description('compare the params pipeline.lock records at a git revision with the current config')
    .option('--all', 'every param, not only those that changed')
    .action(async (rev: string, o) => {
      setCode(await paramsDiffCommand(pipeline, rev, o));
    });
}
