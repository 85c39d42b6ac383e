// Human output of the experiment commands, in render-human.ts's style: `exp run` shows its run's own
// events through the human renderer; a sweep shows one line per experiment and, on a terminal, a bar
// (experiments done of total, which are running, how many failed) under them.

import cliProgress from 'cli-progress';
import pc from 'picocolors';
import type { Logger } from './events.ts';
import type { SweepEvent, SweepGroup } from './exp-sweep.ts';
import type { ExperimentRecord } from './experiments.ts';
import { humanLogger } from './render-human.ts';

export const fmtSeconds = (s: number) =>
  s < 10 ? `${s.toFixed(2)}s` : s < 120 ? `${s.toFixed(1)}s` : `${(s / 60).toFixed(1)}min`;

/** A value in a table: numbers to 4 significant digits, strings bare, the rest as JSON. */
export function fmtValue(v: unknown): string {
  if (v === undefined) return '-';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

export const fmtDelta = (d: number | undefined) => (d === undefined ? '' : `${d >= 0 ? '+' : ''}${fmtValue(d)}`);

/** Columns padded to their widest cell; the header dimmed on a terminal. */
export function table(headers: string[], rows: string[][], tty = false): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  const head = line(headers);
  return [tty ? pc.createColors(true).dim(head) : head, ...rows.map(line)].join('\n');
}

export const overridesText = (o: Record<string, unknown>) =>
  Object.entries(o)
    .map(([k, v]) => `${k}=${fmtValue(v)}`)
    .join(' ') || '(no overrides)';

/** `test.accuracy 0.91, loss 0.2`: the chosen metrics, else the first few. */
export function metricsText(m: Record<string, number>, chosen?: string[], max = 4): string {
  const entries = chosen ? chosen.filter((k) => k in m).map((k) => [k, m[k]] as const) : Object.entries(m);
  const shown = entries.slice(0, max).map(([k, v]) => `${k} ${fmtValue(v)}`);
  return shown.join(', ') + (entries.length > max ? `, … (${entries.length - max} more)` : '');
}

/** `ran: train, evaluate; restored: prepare` */
export function outcomesText(rec: ExperimentRecord): string {
  const by = new Map<string, string[]>();
  for (const [name, s] of Object.entries(rec.stages)) by.set(s.outcome, [...(by.get(s.outcome) ?? []), name]);
  return ['ran', 'restored', 'fresh', 'failed', 'skipped']
    .filter((o) => by.has(o))
    .map((o) => `${o}: ${by.get(o)?.join(', ')}`)
    .join('; ');
}

export function groupsTable(groups: SweepGroup[], tty: boolean, chosen?: string[]): string {
  const all = [...new Set(groups.flatMap((g) => Object.keys(g.stats)))];
  const metrics = chosen ? chosen.filter((m) => all.includes(m)) : all;
  const keys = [...new Set(groups.flatMap((g) => Object.keys(g.params)))];
  const rows = groups.map((g) => [
    ...keys.map((k) => fmtValue(g.params[k])),
    String(g.experiments.length),
    ...metrics.map((m) => {
      const s = g.stats[m];
      return s ? `${fmtValue(s.mean)}${s.std !== undefined ? ` ± ${fmtValue(s.std)}` : ''}` : '-';
    }),
  ]);
  return table([...keys, 'n', ...metrics], rows, tty);
}

export interface ExpRenderOptions {
  out: NodeJS.WriteStream;
  verbose: boolean;
  /** `exp run`: show the run's stage events as `run` does. A sweep: one line per experiment. */
  single: boolean;
  /** The metrics worth a line (a sweep's report metrics); default: the first few. */
  metrics?: string[];
}

export interface ExpView {
  emit(e: SweepEvent): void;
  /** Take the sweep's bar off the screen, before a summary is printed. */
  stop(): void;
}

export function expView(opts: ExpRenderOptions): ExpView {
  const tty = Boolean(opts.out.isTTY);
  const c = pc.createColors(tty);
  const runLog: Logger | undefined = opts.single ? humanLogger({ out: opts.out, verbose: opts.verbose }) : undefined;
  const multi =
    tty && !opts.single
      ? new cliProgress.MultiBar(
          {
            format: ' {sweep} |{bar}| {value}/{total} experiments {failed}{running}',
            hideCursor: true,
            clearOnComplete: true,
            stream: opts.out,
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  let bar: cliProgress.SingleBar | undefined;
  let sweep = '';
  let done = 0;
  let failed = 0;
  const running = new Set<string>();
  const payload = () => ({
    sweep,
    failed: failed > 0 ? c.red(`${failed} failed `) : '',
    running: running.size > 0 ? c.dim(`running: ${[...running].join(', ')}`) : '',
  });
  const print = (line: string) => {
    if (multi && bar) multi.log(`\x1b[2K${line}\n`);
    else opts.out.write(`${line}\n`);
  };
  const tick = () => bar?.update(done, payload());

  const emit = (e: SweepEvent) => {
    switch (e.type) {
      case 'sweep-start':
        sweep = e.sweep;
        print(
          `sweep ${c.bold(e.sweep)}: ${e.total} experiments, ${e.toRun} to run${e.toRun > 1 ? ` (the first alone, then ${e.jobs} at a time)` : ''}`,
        );
        bar = multi?.create(e.total, 0, payload());
        break;
      case 'exp-skipped':
        done++;
        print(
          `${c.dim('·')} ${e.name} ${c.dim('skipped (done)')} ${c.dim(metricsText(e.record.metrics, opts.metrics))}`,
        );
        tick();
        break;
      case 'exp-start':
        running.add(e.name);
        print(
          `${c.cyan('▶')} ${opts.single ? 'experiment ' : ''}${c.bold(e.name)} ${c.dim(overridesText(e.overrides))}`,
        );
        tick();
        break;
      case 'exp-run-event':
        if (runLog) runLog(e.event);
        else if (opts.verbose) {
          const ev = e.event;
          if (ev.type === 'stage-start') print(c.dim(`  ${e.name} │ ▶ ${ev.stage}`));
          else if (ev.type === 'stage-success') print(c.dim(`  ${e.name} │ ✓ ${ev.stage} ${fmtSeconds(ev.seconds)}`));
          else if (ev.type === 'stage-restored') print(c.dim(`  ${e.name} │ ↺ ${ev.stage} restored from cache`));
          else if (ev.type === 'stage-failure') print(c.dim(`  ${e.name} │ ✗ ${ev.stage}`));
        }
        break;
      case 'exp-done': {
        running.delete(e.name);
        done++;
        const r = e.record;
        if (r.status === 'success') {
          print(
            `${c.green('✓')} ${c.bold(e.name)} ${c.dim(fmtSeconds(r.seconds))}  ${metricsText(r.metrics, opts.metrics) || c.dim('no metrics')}${opts.single ? '' : c.dim(`  (${outcomesText(r)})`)}`,
          );
        } else {
          failed++;
          print(`${c.red('✗')} ${c.bold(e.name)} failed: ${c.red(r.error ?? 'unknown error')}`);
          if (r.logs) print(c.dim(`  its stage logs: ${r.logs}/`));
        }
        tick();
        break;
      }
      case 'exp-interrupted':
        running.delete(e.name);
        print(c.yellow(`${e.name} interrupted: nothing recorded for it`));
        tick();
        break;
      case 'exp-warning':
        print(c.yellow(`warning: ${e.message}`));
        break;
    }
  };
  return {
    emit,
    stop: () => {
      multi?.stop();
      bar = undefined;
    },
  };
}
