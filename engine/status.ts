// Is a stage stale, and exactly why? Compares the current fingerprint and outs with the lock entry,
// cheap to costly as DVC does: definition, params, code, deps, then outs.

import objectHash from 'object-hash';
import { FINGERPRINT_VERSION, type Fingerprint } from './fingerprint.ts';
import type { PathHash } from './hashing.ts';
import type { LockEntry } from './lockfile.ts';

export type Reason =
  | { kind: 'never-run' }
  | {
      kind: 'dep';
      path: string;
      change: 'modified' | 'added' | 'removed' | 'missing';
      /** For a folder or glob: which files differ from the locked version (when its listing is known). */
      files?: FileChanges;
    }
  | { kind: 'param'; path: string; old?: unknown; new?: unknown; change: 'modified' | 'added' | 'removed' }
  | { kind: 'code'; path: string; change: 'modified' | 'added' | 'removed' }
  | { kind: 'out-missing'; path: string }
  | { kind: 'out-modified'; path: string }
  | { kind: 'upstream'; path: string; stage: string }
  | { kind: 'forced' };

export type StageState = 'fresh' | 'stale' | 'never-run';

export interface FileChanges {
  added: number;
  removed: number;
  modified: number;
  /** A few of the paths, for the message. */
  examples: string[];
}

/** Which files differ between two (path, hash) listings. */
export function diffListings(before: Array<[string, string]>, after: Array<[string, string]>): FileChanges {
  const old = new Map(before);
  const now = new Map(after);
  const changes: FileChanges = { added: 0, removed: 0, modified: 0, examples: [] };
  const note = (p: string) => {
    if (changes.examples.length < 3) changes.examples.push(p);
  };
  for (const [p, h] of now) {
    if (!old.has(p)) {
      changes.added++;
      note(p);
    } else if (old.get(p) !== h) {
      changes.modified++;
      note(p);
    }
  }
  for (const p of old.keys()) {
    if (!now.has(p)) {
      changes.removed++;
      note(p);
    }
  }
  return changes;
}

const same = (a: unknown, b: unknown) => objectHash(a ?? null) === objectHash(b ?? null);

function diffKeys<T>(
  old: Record<string, T>,
  now: Record<string, T>,
  eq: (a: T, b: T) => boolean,
): Array<{ path: string; change: 'modified' | 'added' | 'removed' }> {
  const out: Array<{ path: string; change: 'modified' | 'added' | 'removed' }> = [];
  for (const k of Object.keys(now)) {
    if (!(k in old)) out.push({ path: k, change: 'added' });
    else if (!eq(old[k], now[k])) out.push({ path: k, change: 'modified' });
  }
  for (const k of Object.keys(old)) if (!(k in now)) out.push({ path: k, change: 'removed' });
  return out;
}

/** Reasons the stage must run, given its lock entry (if any), fingerprint and current outs. */
export function explain(entry: LockEntry | undefined, fp: Fingerprint, outs: Map<string, PathHash>): Reason[] {
  if (!entry) return [{ kind: 'never-run' }];
  const reasons: Reason[] = [];
  if (entry.engine !== FINGERPRINT_VERSION) reasons.push({ kind: 'code', path: '<engine>', change: 'modified' });
  if ((entry.cmd ?? '') !== (fp.cmd ?? '')) reasons.push({ kind: 'code', path: '<cmd>', change: 'modified' });
  for (const d of diffKeys(entry.params ?? {}, fp.params, same)) {
    reasons.push({ kind: 'param', ...d, old: entry.params?.[d.path], new: fp.params[d.path] });
  }
  for (const d of diffKeys(entry.code ?? {}, fp.code, (a, b) => a === b)) reasons.push({ kind: 'code', ...d });
  for (const d of diffKeys(entry.deps ?? {}, fp.deps, (a, b) => a.hash === b.hash)) {
    const missing = d.change !== 'removed' && fp.deps[d.path].hash === null;
    reasons.push({ kind: 'dep', path: d.path, change: missing ? 'missing' : d.change });
  }
  for (const [p, h] of outs) {
    const rec = entry.outs?.[p];
    if (h.kind === 'missing') reasons.push({ kind: 'out-missing', path: p });
    else if (!rec || rec.hash !== h.hash) reasons.push({ kind: 'out-modified', path: p });
  }
  return reasons;
}

export function stateOf(reasons: Reason[]): StageState {
  if (reasons.length === 0) return 'fresh';
  return reasons.some((r) => r.kind === 'never-run') ? 'never-run' : 'stale';
}

const show = (v: unknown) => (v === undefined ? 'unset' : JSON.stringify(v));

/** One human line per reason, e.g. `changed param: train.lr (0.001 -> 0.0005)`. */
export function describeReason(r: Reason): string {
  switch (r.kind) {
    case 'never-run':
      return 'never run';
    case 'forced':
      return 'forced';
    case 'dep': {
      if (r.change === 'missing') return `missing dep: ${r.path}`;
      const f = r.files;
      const detail = f
        ? ` (${[f.added && `${f.added} added`, f.removed && `${f.removed} removed`, f.modified && `${f.modified} modified`].filter(Boolean).join(', ')}: ${f.examples.join(', ')}${f.added + f.removed + f.modified > f.examples.length ? ', …' : ''})`
        : '';
      return `${r.change === 'modified' ? 'changed' : r.change} dep: ${r.path}${detail}`;
    }
    case 'param':
      return `${r.change === 'modified' ? 'changed' : r.change} param: ${r.path} (${show(r.old)} -> ${show(r.new)})`;
    case 'code':
      if (r.path === '<engine>') return 'engine fingerprint version changed';
      if (r.path === '<cmd>') return 'changed cmd';
      return `${r.change === 'modified' ? 'changed' : r.change} code: ${r.path}`;
    case 'out-missing':
      return `missing out: ${r.path}`;
    case 'out-modified':
      return `modified out: ${r.path}`;
    case 'upstream':
      return `upstream stale: ${r.stage}`;
  }
}
