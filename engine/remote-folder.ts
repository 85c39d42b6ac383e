// A remote that is a folder: local, or a mounted network share. `put` copies to a temp name in the
// same folder and renames, so a key is either absent or complete, also when two pushes race.

import { constants, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { copyFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { PipelineError } from './failure.ts';
import type { Remote, RemoteObject } from './remote.ts';

export class FolderRemote implements Remote {
  readonly where: string;

  constructor(
    readonly name: string,
    private readonly dir: string,
  ) {
    this.where = dir;
  }

  private check(): void {
    if (!existsSync(this.dir)) {
      throw new PipelineError({
        reason: 'remote',
        message: `remote '${this.name}' is unreachable: folder ${this.dir} does not exist (create it, or mount it)`,
      });
    }
  }

  async has(keys: string[]): Promise<Set<string>> {
    this.check();
    return new Set(keys.filter((k) => existsSync(path.join(this.dir, k))));
  }

  async put(key: string, file: string): Promise<void> {
    this.check();
    const dest = path.join(this.dir, key);
    mkdirSync(path.dirname(dest), { recursive: true });
    const tmp = `${dest}.${process.pid}.${Math.random().toString(36).slice(2)}.partial`;
    try {
      // Async: transfers run several at once, and a slow file create must not hold up the others.
      await copyFile(file, tmp, constants.COPYFILE_FICLONE);
      await rename(tmp, dest);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
  }

  async get(key: string, dest: string): Promise<void> {
    this.check();
    const src = path.join(this.dir, key);
    if (!existsSync(src)) throw new Error(`remote '${this.name}' has no ${key}`);
    await copyFile(src, dest, constants.COPYFILE_FICLONE);
  }

  async *list(prefix: string): AsyncIterable<RemoteObject> {
    this.check();
    const base = path.join(this.dir, prefix);
    const walk = function* (abs: string, rel: string): Generator<RemoteObject> {
      let names: string[];
      try {
        names = readdirSync(abs);
      } catch {
        return;
      }
      for (const n of names.sort()) {
        if (n.endsWith('.partial')) continue;
        const childAbs = path.join(abs, n);
        const childRel = rel ? `${rel}/${n}` : n;
        const st = statSync(childAbs);
        if (st.isDirectory()) yield* walk(childAbs, childRel);
        else yield { key: `${prefix.replace(/\/$/, '')}/${childRel}`, size: st.size };
      }
    };
    yield* walk(base, '');
  }
}
