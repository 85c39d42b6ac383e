// What `watch` watches, and what a change to a path means. Pure: the inputs of the watched stages in,
// paths and decisions out.
//
//   wanted:  deps no stage makes (a file, a folder, a glob's base folder), the config files read, and
//            pipeline.ts with every local module it imports (stage modules and their helpers)
//   never:   any stage's outs, .pipeline/, .git/, node_modules/ — what a run writes itself
//
// chokidar gets each wanted path that exists, or else its nearest existing ancestor: chokidar does not
// see a path appear under a folder that did not exist when watching began, nor a watched folder that
// was deleted and made again. `ignored` keeps it to the wanted paths and the folders leading to them.
//
// Inside a folder dep, chokidar watches the folders only, not each file: it would otherwise hold an
// inotify watch and a handle per file (70,000 for FFHQ: past the kernel's default limit of 8,192 on
// many systems, and ~600 MB here). A folder's inotify watch already reports every write, creation and
// deletion in it, with the file's name, as chokidar's `raw` event; `fromRaw` turns those into changes.

import { existsSync, type Stats, statSync } from 'node:fs';
import path from 'node:path';
import picomatch from 'picomatch';
import { isDynamicPattern } from 'tinyglobby';

export interface WatchInputs {
  /** Deps of the watched stages that no stage makes, normalised; globs stay globs. */
  deps: string[];
  /** Config files read (base first), project-relative. */
  config: string[];
  /** pipeline.ts and the local modules it imports: a change there means reloading the definition. */
  definition: string[];
  /** Outs of every stage: a run writes them, so they never trigger one. */
  outs: string[];
}

export type ChangeKind = 'added' | 'modified' | 'removed';

/** What the run itself writes, or what is never an input. */
const NEVER = ['.pipeline', '.git', 'node_modules'];

/** `p` is `dir` or inside it; '' is the project root. */
export const within = (p: string, dir: string) => dir === '' || p === dir || p.startsWith(`${dir}/`);

interface Glob {
  base: string;
  match: (p: string) => boolean;
}

export class WatchMatcher {
  private readonly plain: string[];
  private readonly globs: Glob[];
  /** Deps that may be folders, and glob bases: their files are seen through their folders' watches. */
  private readonly folders: string[];
  private readonly definition: Set<string>;
  private readonly config: Set<string>;
  /** Every path to watch, a glob's base folder standing for the glob; sorted. */
  readonly wanted: string[];

  constructor(
    private readonly root: string,
    private readonly inputs: WatchInputs,
  ) {
    // A dep inside an out is made by a stage: its writes are the run's own.
    const deps = inputs.deps.filter((d) => !inputs.outs.some((o) => within(d, o)));
    this.globs = deps
      .filter((d) => isDynamicPattern(d))
      .map((pattern) => ({
        base: picomatch.scan(pattern).base,
        match: picomatch(pattern, { dot: true }),
      }))
      .filter((g) => !inputs.outs.some((o) => within(g.base, o)));
    const plainDeps = deps.filter((d) => !isDynamicPattern(d));
    this.plain = [...plainDeps, ...inputs.config, ...inputs.definition];
    this.folders = [...plainDeps, ...this.globs.map((g) => g.base)];
    this.definition = new Set(inputs.definition);
    this.config = new Set(inputs.config);
    this.wanted = [...new Set([...this.plain, ...this.globs.map((g) => g.base)])].sort();
  }

  /**
   * What to hand chokidar: each wanted path that exists, else its nearest existing ancestor. This list
   * changes when a watched path appears or disappears, which is when the watcher must be rebuilt.
   */
  roots(): string[] {
    const roots = new Set<string>();
    for (const w of this.wanted) {
      let p = w;
      while (p !== '' && !existsSync(path.join(this.root, p))) p = parentOf(p);
      roots.add(p);
    }
    return [...roots].sort();
  }

  /** For chokidar's `ignored` (absolute paths; `stats` on its second call for a path). */
  readonly ignored = (abs: string, stats?: Stats): boolean => {
    const rel = this.rel(abs);
    if (rel === undefined) return true;
    if (rel === '') return false;
    if (NEVER.some((d) => within(rel, d)) || this.inputs.outs.some((o) => within(rel, o))) return true;
    if (stats?.isFile() && this.insideFolder(rel) && !this.plain.includes(rel)) return true;
    for (const w of this.plain) if (within(rel, w) || within(w, rel)) return false;
    for (const g of this.globs) {
      if (within(g.base, rel)) return false; // on the way to the glob's folder
      if (within(rel, g.base)) return stats?.isFile() ? !g.match(rel) : false;
    }
    return true;
  };

  /** Is this event a change to an input, and does it touch the definition? */
  classify(abs: string, event: string): { relevant: boolean; definition: boolean } | undefined {
    const rel = this.rel(abs);
    if (rel === undefined || this.ignored(abs)) return undefined;
    if (this.definition.has(rel)) return { relevant: true, definition: true };
    const dirEvent = event === 'addDir' || event === 'unlinkDir';
    // A folder made inside a folder dep counts: files made in it before its watch began are seen by
    // no event of their own.
    const relevant =
      this.config.has(rel) ||
      this.plain.some((w) => within(rel, w)) ||
      (dirEvent ? this.insideFolder(rel) : this.globs.some((g) => g.match(rel)));
    return relevant ? { relevant, definition: false } : undefined;
  }

  /**
   * A change reported by a folder's inotify watch (chokidar's `raw` event: 'change' or 'rename', the
   * entry's name, the folder): the file inside a folder dep it is about, as an event name for
   * `classify`. Undefined for what chokidar reports itself (a file watched on its own, a folder's own
   * watch reporting the folder).
   */
  fromRaw(raw: string, name: unknown, watched: string): { abs: string; event: string } | undefined {
    if (typeof name !== 'string' || name === '') return undefined;
    if (name === path.basename(watched) && !isDirectory(watched)) return undefined;
    const abs = path.join(watched, name);
    const rel = this.rel(abs);
    if (rel === undefined || !this.insideFolder(rel)) return undefined;
    return { abs, event: raw === 'change' ? 'change' : existsSync(abs) ? 'add' : 'unlink' };
  }

  private insideFolder(rel: string): boolean {
    return this.folders.some((f) => rel !== f && within(rel, f));
  }

  /** Does a change to `rel` touch these deps / code modules (for cancelling a running stage)? */
  touches(rel: string, deps: string[], code: string[]): boolean {
    if (code.includes(rel)) return true;
    return deps.some((d) => (isDynamicPattern(d) ? picomatch(d, { dot: true })(rel) : within(rel, d)));
  }

  isConfig(rel: string): boolean {
    return this.config.has(rel);
  }

  rel(abs: string): string | undefined {
    const r = path.relative(this.root, abs).split(path.sep).join('/');
    return r.startsWith('..') || path.isAbsolute(r) ? undefined : r;
  }
}

function isDirectory(abs: string): boolean {
  return statSync(abs, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

export function changeKind(event: string): ChangeKind {
  return event === 'add' || event === 'addDir' ? 'added' : event === 'change' ? 'modified' : 'removed';
}
