// `pipeline.lock`: what each stage last ran with and produced. YAML with sorted keys so diffs stay small
// and reviewable; meant to be committed. Written whole, atomically (temp + rename), after each success.

import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as yaml from 'js-yaml';
import { PipelineError } from './failure.ts';
import type { ContentHash } from './types.ts';

export const LOCK_FILE = 'pipeline.lock';
const SCHEMA = 1;

export interface PathRecord {
  hash: ContentHash | null;
  size: number;
  /** For folders and globs. */
  files?: number;
}

export interface LockEntry {
  /** FINGERPRINT_VERSION of the engine that wrote the entry. */
  engine: number;
  cmd?: string;
  code: Record<string, ContentHash>;
  deps: Record<string, PathRecord>;
  params: Record<string, unknown>;
  outs: Record<string, PathRecord>;
  /** Hash of everything above except outs: the run-cache key. */
  fingerprint: ContentHash;
}

export interface LockFile {
  schema: number;
  stages: Record<string, LockEntry>;
}

export function readLock(root: string): LockFile {
  const file = path.join(root, LOCK_FILE);
  if (!existsSync(file)) return { schema: SCHEMA, stages: {} };
  let doc: unknown;
  try {
    doc = yaml.load(readFileSync(file, 'utf8'));
  } catch (e) {
    const err = e as { mark?: { line: number }; reason?: string; message: string };
    throw new PipelineError({
      reason: 'yaml',
      file: LOCK_FILE,
      line: err.mark ? err.mark.line + 1 : undefined,
      message: `${err.reason ?? err.message} (restore it from git, or delete it to rerun every stage)`,
    });
  }
  const lock = (doc ?? {}) as Partial<LockFile>;
  return { schema: SCHEMA, stages: lock.stages ?? {} };
}

export function writeLock(root: string, lock: LockFile): void {
  const file = path.join(root, LOCK_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  const text = yaml.dump({ schema: SCHEMA, stages: lock.stages }, { sortKeys: true, lineWidth: 120, noRefs: true });
  writeFileSync(tmp, `# Written by \`pipeline run\`: what each stage last ran with and produced. Commit it.\n${text}`);
  renameSync(tmp, file);
}
