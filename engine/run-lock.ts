// One run at a time per workspace. proper-lockfile's lock is a directory created atomically and kept
// fresh by the holder, so a lock left by a killed process goes stale and is taken over.
// `status` never takes it: it only reads.

import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import type { Logger } from './events.ts';
import { PipelineError } from './failure.ts';

const POLL_MS = 250;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function acquireRunLock(
  root: string,
  opts: { wait: boolean; emit: Logger; signal: AbortSignal },
): Promise<() => Promise<void>> {
  const dir = path.join(root, '.pipeline');
  mkdirSync(dir, { recursive: true });
  const target = path.join(dir, 'run');
  const pidFile = path.join(dir, 'run.pid');
  let announced = false;
  for (;;) {
    try {
      const release = await lockfile.lock(target, { realpath: false, stale: 10_000, update: 2_000 });
      writeFileSync(pidFile, String(process.pid));
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
      let pid: number | undefined;
      try {
        pid = Number(readFileSync(pidFile, 'utf8')) || undefined;
      } catch {
        pid = undefined;
      }
      if (pid !== undefined && !isAlive(pid)) {
        // Its holder died without releasing it (SIGKILL, power loss): take it over now rather than
        // waiting for it to go stale.
        // (proper-lockfile only unlocks its own locks; its lock is the directory `<file>.lock`.)
        rmSync(`${target}.lock`, { recursive: true, force: true });
        continue;
      }
      if (!opts.wait) throw new PipelineError({ reason: 'locked', pid });
      if (!announced) opts.emit({ type: 'run-waiting', pid });
      announced = true;
      if (opts.signal.aborted) throw new PipelineError({ reason: 'locked', pid });
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
}
