// The workspace's run lock, in-process: a holder record left by a killed run never makes a waiter take
// away the lock of a live run that has just taken it; a lock whose recorded holder is dead is taken over.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { PipelineError } from '../engine/failure.ts';
import { acquireRunLock } from '../engine/run-lock.ts';

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function workspace(): { root: string; lockDir: string; pidFile: string } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'run-lock-'));
  roots.push(root);
  mkdirSync(path.join(root, '.pipeline'));
  return { root, lockDir: path.join(root, '.pipeline', 'run.lock'), pidFile: path.join(root, '.pipeline', 'run.pid') };
}

/** The pid of a process that has exited. */
const deadPid = (): number => spawnSync(process.execPath, ['-e', '']).pid as number;

const opts = () => ({ wait: false, emit: () => undefined, signal: new AbortController().signal });

test('a record left by a killed holder does not describe a lock a new holder has just taken', async () => {
  const { root, lockDir, pidFile } = workspace();
  // A run was killed, leaving its record; a new run has taken the lock but not yet written its own.
  mkdirSync(lockDir);
  writeFileSync(pidFile, `${deadPid()} ${statSync(lockDir).ino + 1}`);
  await assert.rejects(
    acquireRunLock(root, opts()),
    (e) => e instanceof PipelineError && e.failure.reason === 'locked',
  );
  assert.ok(existsSync(lockDir), 'the new holder keeps its lock');
});

test('a lock whose recorded holder is dead is taken over at once, and released cleanly', async () => {
  const { root, lockDir, pidFile } = workspace();
  mkdirSync(lockDir);
  writeFileSync(pidFile, `${deadPid()} ${statSync(lockDir).ino}`);
  const release = await acquireRunLock(root, opts());
  assert.equal(readFileSync(pidFile, 'utf8').split(' ')[0], String(process.pid));
  // Held by a live process (this one): a second acquirer is refused.
  await assert.rejects(acquireRunLock(root, opts()), PipelineError);
  await release();
  assert.ok(!existsSync(lockDir) && !existsSync(pidFile), 'released: no lock and no record left');
  await (await acquireRunLock(root, opts()))();
});
