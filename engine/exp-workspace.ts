// An experiment's own workspace, `.pipeline/exp/ws-<name>/`: a copy of the project's sources in which
// `run --set ...` can change outs and the lock without touching the project's own.
//
//   project/                           .pipeline/exp/ws-<name>/
//     pipeline.ts, stages/, configs/ ──copy──> the same files (git ls-files -co, or a walk)
//     source deps not in git (data/raw) ──copy──> the same
//     pipeline.lock                  ──copy──> pipeline.lock (so unchanged stages keep their entries)
//     persisted / runCache:false outs ──copy──> the same (a stage continues from them, as at home)
//     .pipeline/cache/               <─symlink─ .pipeline/cache   (one cache: what an experiment makes,
//     node_modules/                  <─symlink─ node_modules        the next one and `run` restore)
//
// Other outs are not copied: a stage whose fingerprint is unchanged is restored from the shared
// run-cache, and one whose inputs changed runs.

import {
  constants,
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import picomatch from 'picomatch';
import { isDynamicPattern } from 'tinyglobby';
import type { Graph } from './graph.ts';
import { LOCK_FILE } from './lockfile.ts';

/** Never copied: the engine's state (the cache is linked instead), packages (linked), git's store. */
const NEVER = new Set(['.pipeline', 'node_modules', '.git']);

export const expWorkspaceDir = (root: string, name: string) => path.join(root, '.pipeline', 'exp', `ws-${name}`);

const within = (p: string, parent: string) => p === parent || p.startsWith(`${parent}/`);

/** Project files as git sees them (tracked and untracked-but-not-ignored), or undefined outside git. */
async function gitFiles(root: string): Promise<string[] | undefined> {
  const r = await execa('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: root, reject: false });
  if (r.exitCode !== 0) return undefined;
  return r.stdout.split('\0').filter(Boolean);
}

/** Every file under root, except NEVER at the top and whatever `skip` rejects. */
function walk(root: string, skip: (rel: string) => boolean): string[] {
  const out: string[] = [];
  const visit = (rel: string) => {
    for (const d of readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${d.name}` : d.name;
      if ((!rel && NEVER.has(d.name)) || skip(child)) continue;
      if (d.isDirectory()) visit(child);
      else out.push(child);
    }
  };
  visit('');
  return out;
}

/** Copy one file or symlink (a reflink where the file system has them); a folder (a submodule) whole. */
function copyEntry(from: string, to: string): void {
  const st = lstatSync(from, { throwIfNoEntry: false });
  if (!st) return; // listed by git, deleted in the working tree
  mkdirSync(path.dirname(to), { recursive: true });
  if (st.isSymbolicLink()) symlinkSync(readlinkSync(from), to);
  else if (st.isDirectory()) cpSync(from, to, { recursive: true, verbatimSymlinks: true });
  else copyFileSync(from, to, constants.COPYFILE_FICLONE);
}

export interface ExpWorkspaceOptions {
  root: string;
  name: string;
  graph: Graph;
}

/**
 * Make (afresh) the workspace of experiment `name` and return its root. Its `.pipeline/cache` is the
 * project's, so its stages restore from and store into the one cache.
 */
export async function makeExpWorkspace(opts: ExpWorkspaceOptions): Promise<string> {
  const { root, graph } = opts;
  const dir = expWorkspaceDir(root, opts.name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });

  const outs = graph.stages.flatMap((s) => s.outs);
  const isOut = (rel: string) => outs.some((o) => within(rel, o.path));
  const listed = (await gitFiles(root)) ?? walk(root, isOut);
  for (const rel of listed) {
    if (NEVER.has(rel.split('/')[0]) || isOut(rel) || rel === LOCK_FILE) continue;
    copyEntry(path.join(root, rel), path.join(dir, rel));
  }

  // Source deps git ignores (a data folder kept out of git): needed as they are.
  for (const s of graph.stages) {
    for (const dep of s.deps) {
      const base = isDynamicPattern(dep) ? picomatch.scan(dep).base : dep;
      if (!base || isOut(base) || outs.some((o) => within(o.path, base))) continue;
      if (existsSync(path.join(dir, base)) || !existsSync(path.join(root, base))) continue;
      copyEntry(path.join(root, base), path.join(dir, base));
    }
  }

  // Outs a stage continues from (persisted) or that are never restored from the run-cache (filled by
  // hand): as they are at home, so the experiment starts where the project stands.
  for (const s of graph.stages) {
    for (const o of s.outs) {
      if (!o.persist && s.stage.runCache !== false) continue;
      if (existsSync(path.join(root, o.path))) copyEntry(path.join(root, o.path), path.join(dir, o.path));
    }
  }

  if (existsSync(path.join(root, LOCK_FILE))) copyFileSync(path.join(root, LOCK_FILE), path.join(dir, LOCK_FILE));
  const cache = path.join(root, '.pipeline', 'cache');
  mkdirSync(cache, { recursive: true });
  mkdirSync(path.join(dir, '.pipeline'), { recursive: true });
  symlinkSync(cache, path.join(dir, '.pipeline', 'cache'), 'dir');
  const projectConfig = path.join(root, '.pipeline', 'config.yaml');
  if (existsSync(projectConfig)) copyFileSync(projectConfig, path.join(dir, '.pipeline', 'config.yaml'));
  const modules = path.join(root, 'node_modules');
  if (existsSync(modules) && !existsSync(path.join(dir, 'node_modules')))
    symlinkSync(modules, path.join(dir, 'node_modules'), 'dir');
  return dir;
}

/**
 * Stages that every experiment will run afresh: never restored from the run-cache (`runCache: false`)
 * and with no outs in the project to copy. Worth a warning: `pipeline run <stage>` first shares them.
 */
export function unsharedStages(root: string, graph: Graph): string[] {
  return graph.stages
    .filter((s) => s.stage.runCache === false && s.outs.some((o) => !existsSync(path.join(root, o.path))))
    .map((s) => s.name);
}

/** Remove an experiment's workspace (the links go, not what they point to). */
export function removeExpWorkspace(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
