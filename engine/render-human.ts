// The human renderer: one line per stage event, stage output prefixed with its stage, a progress bar per
// running stage on a terminal (cli-progress), colours only on a TTY, and a summary at the end.

import cliProgress from 'cli-progress';
import pc from 'picocolors';
import type { Event, Logger, StageSummary, WatchOutcome } from './events.ts';
import { describeFailure } from './failure.ts';
import { describeReason } from './status.ts';

export interface HumanOptions {
  out: NodeJS.WriteStream;
  verbose: boolean;
}

const fmtSeconds = (s: number) =>
  s < 10 ? `${s.toFixed(2)}s` : s < 120 ? `${s.toFixed(1)}s` : `${(s / 60).toFixed(1)}min`;

export function summaryLine(stages: StageSummary[], seconds: number): string {
  const count = (o: string) => stages.filter((s) => s.outcome === o).length;
  const parts = [`${count('ran')} ran`];
  if (count('restored')) parts.push(`${count('restored')} restored`);
  parts.push(`${count('fresh')} fresh`, `${count('failed')} failed`);
  if (count('skipped')) parts.push(`${count('skipped')} skipped`);
  return `${parts.join(', ')} in ${fmtSeconds(seconds)}`;
}

export function humanLogger(opts: HumanOptions): Logger {
  const tty = Boolean(opts.out.isTTY);
  const c = pc.createColors(tty);
  const bars = tty
    ? new cliProgress.MultiBar(
        {
          format: ' {stage} |{bar}| {value}/{total} {unit} {eta_formatted} {message}',
          hideCursor: true,
          clearOnComplete: true,
          stopOnComplete: false,
          stream: opts.out,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const active = new Map<string, cliProgress.SingleBar>();
  const lastPrinted = new Map<string, number>();
  const print = (line: string) => {
    // Clear the line first: the log line is drawn where a bar was, and a shorter line would leave its tail.
    if (bars && active.size > 0) bars.log(`\x1b[2K${line}\n`);
    else opts.out.write(`${line}\n`);
  };
  const dropBar = (stage: string) => {
    const bar = active.get(stage);
    if (bar && bars) {
      bars.remove(bar);
      active.delete(stage);
      if (active.size === 0) bars.stop();
    }
  };

  return (e: Event) => {
    switch (e.type) {
      case 'run-waiting':
        print(
          c.yellow(
            `another run${e.pid ? ` (pid ${e.pid})` : ''} holds this workspace; waiting for it (Ctrl-C to give up, --no-wait to fail at once)`,
          ),
        );
        break;
      case 'run-plan':
        for (const s of e.stages) {
          if (s.reasons.length === 0) print(`${c.dim('·')} ${s.name} ${c.dim('fresh')}`);
          else if (s.restorable) {
            print(
              `${c.green('↺')} would restore ${c.bold(s.name)} from cache: ${s.reasons.map(describeReason).join('; ')}`,
            );
          } else print(`${c.cyan('▶')} would run ${c.bold(s.name)}: ${s.reasons.map(describeReason).join('; ')}`);
        }
        break;
      case 'recovered':
        print(
          c.yellow(
            `restored the outs of '${e.stage}' left aside by an interrupted run: ${e.paths.join(', ') || 'none'}`,
          ),
        );
        break;
      case 'stage-start':
        print(`${c.cyan('▶')} ${c.bold(e.stage)} ${c.dim(`(${e.reasons.map(describeReason).join('; ')})`)}`);
        break;
      case 'stage-fresh':
        if (opts.verbose) print(`${c.dim('·')} ${e.stage} ${c.dim('fresh')}`);
        break;
      case 'stage-output':
        print(`${c.dim(`  ${e.stage} │`)} ${e.stream === 'stderr' || e.stream === 'warn' ? c.yellow(e.line) : e.line}`);
        break;
      case 'stage-progress': {
        const p = e.progress;
        if (bars) {
          let bar = active.get(e.stage);
          const payload = { stage: e.stage, unit: p.unit ?? '', message: p.message ?? '' };
          if (!bar) {
            bar = bars.create(p.total ?? 0, p.done, payload);
            active.set(e.stage, bar);
          }
          if (p.total !== undefined) bar.setTotal(p.total);
          bar.update(p.done, payload);
        } else {
          // Without a terminal: a line at most every 5 s, and at the end.
          const now = Date.now();
          if (now - (lastPrinted.get(e.stage) ?? 0) >= 5000 || p.done === p.total) {
            lastPrinted.set(e.stage, now);
            const of = p.total !== undefined ? `/${p.total}` : '';
            print(`${c.dim(`  ${e.stage} │`)} ${p.done}${of} ${p.unit ?? ''} ${p.message ?? ''}`.trimEnd());
          }
        }
        break;
      }
      case 'stage-success':
        dropBar(e.stage);
        print(`${c.green('✓')} ${e.stage} ${c.dim(fmtSeconds(e.seconds))}`);
        break;
      case 'stage-failure':
        dropBar(e.stage);
        print(`${c.red('✗')} ${e.stage}: ${c.red(describeFailure(e.failure))}`);
        if (e.failure.reason !== 'aborted') print(c.dim(`  full output: .pipeline/logs/${e.stage}.log`));
        break;
      case 'stage-restored':
        print(
          `${c.green('↺')} ${e.stage} ${c.dim(`restored from ${e.from === 'remote' ? 'the remote' : 'cache'}${opts.verbose ? ` (${e.link})` : ''} ${fmtSeconds(e.seconds)}`)}`,
        );
        break;
      case 'warning':
        print(c.yellow(`warning: ${e.message}`));
        break;
      case 'transfer-progress': {
        const key = `${e.direction} ${e.remote}`;
        if (bars) {
          let bar = active.get(key);
          const payload = { stage: key, unit: 'objects', message: `${(e.bytes / 1e6).toFixed(1)} MB` };
          if (!bar) {
            bar = bars.create(e.total, e.done, payload);
            active.set(key, bar);
          }
          bar.update(e.done, payload);
          if (e.done >= e.total) dropBar(key);
        }
        break;
      }
      case 'stage-skipped':
        print(`${c.yellow('-')} ${e.stage} skipped: ${e.because}`);
        break;
      case 'interrupt':
        print(c.yellow(`${e.signal}: stopping running stages; nothing is recorded for them (again to force)`));
        break;
      case 'watch-cycle': {
        if (e.cycle === 1) break;
        const listed = e.changes.map((ch) => `${ch.path}${ch.change === 'modified' ? '' : ` (${ch.change})`}`);
        const more = e.count > listed.length ? ` and ${e.count - listed.length} more` : '';
        print(`${c.cyan('↻')} ${listed.join(', ')}${more}${e.reload ? c.dim(': reloading the pipeline') : ''}`);
        break;
      }
      case 'watch-reload':
        print(c.dim(`  ${e.file}: ${e.stages.length} stages (${e.stages.join(', ')})`));
        break;
      case 'watch-cancel':
        print(
          c.yellow(
            `${e.paths.join(', ')} changed while ${e.stages.join(', ')} ran: stopping the run (nothing recorded); it starts again`,
          ),
        );
        break;
      case 'watch-error':
        print(`${c.red('✗')} ${c.red(e.message)}`);
        print(c.dim('  still watching: save a fix and the pipeline runs again'));
        break;
      case 'watch-idle': {
        const mark: Record<WatchOutcome, string> = {
          ran: c.green('✓'),
          restored: c.green('↺'),
          fresh: c.dim('·'),
          failed: c.red('✗'),
          skipped: c.yellow('-'),
          cancelled: c.yellow('⊘'),
        };
        const stages = e.stages.map((s) => `${mark[s.outcome]} ${s.name}`).join('  ');
        print(c.dim(`watching ${e.watching} paths, Ctrl-C to stop`) + (stages ? `  ${stages}` : ''));
        break;
      }
      case 'watch-stop':
        print(
          `stopped watching after ${fmtSeconds(e.seconds)}: ${e.cycles} cycles, ${e.ran} stage runs, ${e.failed} failed, ${e.cancelled} cancelled`,
        );
        break;
      case 'run-summary': {
        for (const bar of active.keys()) dropBar(bar);
        const line = summaryLine(e.stages, e.seconds);
        const failed = e.stages.some((s) => s.outcome === 'failed');
        print(e.interrupted ? c.yellow(`interrupted: ${line}`) : failed ? c.red(line) : c.green(line));
        if (opts.verbose) {
          print(
            c.dim(
              `checked ${e.io.statted} files, read ${e.io.hashedFiles} (${(e.io.hashedBytes / 1e6).toFixed(1)} MB)`,
            ),
          );
        }
        break;
      }
    }
  };
}
