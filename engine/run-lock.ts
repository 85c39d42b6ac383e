// One run at a time per workspace. proper-lockfile's lock is a directory created atomically and kept
// fresh by the holder, so a lock left by a killed process goes stale and is taken over.
// `status` never takes it: it only reads.
//
// Beside the lock, `run.pid` names its holder: "<pid> <inode of the lock directory>". The inode ties the
// record to one lock: a record left by an earlier holder (killed before it could remove it) never
// describes the lock a new holder has just taken and not yet recorded, so a waiter never mistakes a live
// holder for the dead one and takes its lock away.

import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
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

function inode(dir: string): number | undefined {
  try {
    return statSync(dir).ino;
  } catch {
    return undefined;
  }
}

interface Holder {
  pid: number;
  ino: number;
}

function readHolder(pidFile: string): Holder | undefined {
  try {
    const [pid, ino] = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
    return pid && ino ? { pid, ino } : undefined;
  } catch {
    return undefined;
  }
}

/** The holder of the lock directory as it is now; undefined while a new holder has not recorded itself. */
function currentHolder(lockDir: string, pidFile: string): Holder | undefined {
  const holder = readHolder(pidFile);
  return holder && holder.ino === inode(lockDir) ? holder : undefined;
}

/**
 * Removes a lock whose holder died without releasing it (SIGKILL, power loss), rather than waiting for
 * it to go stale. The directory is first renamed aside, so that of two waiters doing this at once only
 * one removes it, and the record is checked again on the renamed directory.
 */
function takeOver(lockDir: string, dead: Holder): void {
  const aside = `${lockDir}.dead-${process.pid}`;
  try {
    renameSync(lockDir, aside);
  } catch {
    return; // someone else moved it first
  }
  if (inode(aside) === dead.ino) {
    rmSync(aside, { recursive: true, force: true });
    return;
  }
  try {
    renameSync(aside, lockDir); // not the dead holder's lock after all: put it back
  } catch {
    rmSync(aside, { recursive: true, force: true });
  }
}

export async function acquireRunLock(
  root: string,
  opts: { wait: boolean; emit: Logger; signal: AbortSignal },
): Promise<() => Promise<void>> {
  const dir = path.join(root, '.pipeline');
  await mkdir(dir, { recursive: true });
  const target = path.join(dir, 'run');
  const lockDir = `${target}.lock`; // proper-lockfile's lock is this directory
  const pidFile = path.join(dir, 'run.pid');
  let announced = false;
  for (;;) {
    try {
      const release = await lockfile.lock(target, {
        realpath: false,
        stale: 10_000,
        update: 2_000,
        // Another process took the lock away (it judged it stale: this process was stopped for 10 s).
        // Say so and finish the run rather than crash in a timer.
        onCompromised: (e) =>
          opts.emit({ type: 'warning', message: `the workspace's run lock was taken over: ${e.message}` }),
      });
      writeFileSync(pidFile, `${process.pid} ${inode(lockDir)}`);
      return async () => {
        if (readHolder(pidFile)?.pid === process.pid) rmSync(pidFile, { force: true });
        await release().catch(() => undefined);
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
      const holder = currentHolder(lockDir, pidFile);
      if (holder && !isAlive(holder.pid)) {
        takeOver(lockDir, holder);
        continue;
      }
      if (!opts.wait) throw new PipelineError({ reason: 'locked', pid: holder?.pid });
      if (!announced) opts.emit({ type: 'run-waiting', pid: holder?.pid });
      announced = true;
      if (opts.signal.aborted) throw new PipelineError({ reason: 'locked', pid: holder?.pid });
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
}
