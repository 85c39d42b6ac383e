// A stage's fingerprint, kept part by part so a difference can be explained input by input:
// the hash of each dep (upstream outs included), the value of each config key it reads, the hash of
// each module of its code (found by code-deps.ts), its shell command, and the engine's version.

import objectHash from 'object-hash';
import { findCodeDeps } from './code-deps.ts';
import { type ConfigTree, resolveParams } from './config.ts';
import type { GraphStage } from './graph.ts';
import { type Hasher, hashBytes, type PathHash } from './hashing.ts';
import type { LockEntry, PathRecord } from './lockfile.ts';
import type { ContentHash } from './types.ts';

/** Bump when a change to the engine should make every stage rerun. */
export const FINGERPRINT_VERSION = 1;

export type Fingerprint = Omit<LockEntry, 'outs'>;

const within = (a: string, b: string) => a === b || a.startsWith(`${b}/`);

export function toRecord(h: PathHash): PathRecord {
  return h.kind === 'dir' || h.kind === 'glob'
    ? { hash: h.hash ?? null, size: h.size, files: h.files }
    : { hash: h.hash ?? null, size: h.size };
}

export class Fingerprinter {
  /** Path hashes already computed in this command; dropped when a stage writes over them. */
  private memo = new Map<string, PathHash>();
  /**
   * Folders to hash again knowing which files in them changed (relative to the folder): only those are
   * stat'ed. Set by `carryOver`, from what the file system reported.
   */
  private changedIn = new Map<string, string[]>();
  private codeDeps?: Map<string, string[]>;

  constructor(
    private readonly root: string,
    readonly hasher: Hasher,
    private readonly config: ConfigTree,
  ) {}

  /** Hash many paths at once (one pass, one worker pool), memoised. */
  async hash(paths: string[]): Promise<Map<string, PathHash>> {
    const todo = [...new Set(paths)].filter((p) => !this.memo.has(p));
    if (todo.length > 0) {
      for (const [p, h] of await this.hasher.hashPaths(todo, this.changedIn)) this.memo.set(p, h);
      for (const p of todo) this.changedIn.delete(p);
    }
    return new Map(paths.map((p) => [p, this.memo.get(p) as PathHash]));
  }

  /** Forget hashes a stage may just have changed by writing `outs`. */
  invalidate(outs: string[]): void {
    for (const key of this.memo.keys()) {
      if (outs.some((o) => within(key, o) || within(o, key) || /[*?[{]/.test(key))) this.memo.delete(key);
    }
    // Written by a stage, not reported by the file system: walked whole.
    for (const key of this.changedIn.keys())
      if (outs.some((o) => within(key, o) || within(o, key))) this.changedIn.delete(key);
  }

  /**
   * Take over another command's path hashes except those `changed` touches: for a long-lived caller
   * (`watch`) that is told by the file system what changed, so unchanged folders are not walked again,
   * and a folder with changes inside stats only those files.
   */
  carryOver(from: Fingerprinter, changed: string[]): void {
    for (const [key, h] of from.memo) {
      if (/[*?[{]/.test(key)) continue;
      const touching = changed.filter((c) => within(key, c) || within(c, key));
      if (touching.length === 0) this.memo.set(key, h);
      else if (h.kind === 'dir' && touching.every((c) => c !== key && within(c, key))) {
        this.changedIn.set(
          key,
          touching.map((c) => c.slice(key.length + 1)),
        );
      }
    }
  }

  /** Resolve every stage's code modules in one esbuild pass. */
  async loadCodeDeps(stages: GraphStage[]): Promise<void> {
    const modules = stages.filter((s) => s.stage.run).map((s) => s.stage.sourceModule);
    this.codeDeps = await findCodeDeps(this.root, modules);
  }

  codeFiles(s: GraphStage): string[] {
    if (!s.stage.run) return [];
    return this.codeDeps?.get(s.stage.sourceModule) ?? [];
  }

  /** Every path whose hash the stage's freshness needs: for a batched `hash()` before `compute()`. */
  pathsOf(s: GraphStage): string[] {
    return [...s.deps, ...s.outs.map((o) => o.path), ...this.codeFiles(s)];
  }

  params(s: GraphStage): Map<string, unknown> {
    return resolveParams(this.config, s.stage.params ?? [], s.name);
  }

  async compute(s: GraphStage): Promise<{ fingerprint: Fingerprint; outs: Map<string, PathHash> }> {
    const hashes = await this.hash(this.pathsOf(s));
    const code: Record<string, ContentHash> = {};
    for (const f of this.codeFiles(s)) code[f] = (hashes.get(f)?.hash ?? 'missing') as ContentHash;
    const deps: Record<string, PathRecord> = {};
    for (const d of s.deps) deps[d] = toRecord(hashes.get(d) as PathHash);
    const params = Object.fromEntries(this.params(s));
    const body = {
      engine: FINGERPRINT_VERSION,
      ...(s.stage.cmd !== undefined ? { cmd: s.stage.cmd } : {}),
      code,
      deps,
      params,
    };
    const fingerprint = { ...body, fingerprint: hashBytes(objectHash(body, { unorderedObjects: true })) };
    const outs = new Map(s.outs.map((o) => [o.path, hashes.get(o.path) as PathHash]));
    return { fingerprint, outs };
  }
}
