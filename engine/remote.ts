// Remotes: where cache objects travel between machines (a colleague's, CI's). A remote is a flat key
// space with the local cache's layout:
//
//   objects/ab/cdef…          file contents, by BLAKE3 hash
//   dirs/<hash>.json          folder manifests, by folder hash
//   runs/<stage>/<fp>.json    run-cache entries: a stage's input fingerprint -> its outs
//
// Backends implement `Remote`; `put` must make a key visible only once its content is complete, so an
// interrupted push never leaves a partial object under its final key.
//
// Config: `.pipeline/config.yaml` (committed; never credentials: those come from the environment or the
// standard AWS chain).

import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as yaml from 'js-yaml';
import { PipelineError } from './failure.ts';

export interface RemoteObject {
  key: string;
  size: number;
}

export interface Remote {
  readonly name: string;
  /** For messages: where it points. */
  readonly where: string;
  /** Which of `keys` the remote has. */
  has(keys: string[]): Promise<Set<string>>;
  /** Upload a local file; the key appears only when complete. */
  put(key: string, file: string, signal?: AbortSignal): Promise<void>;
  /** Download a key into `dest` (the caller writes to a temp path and renames). */
  get(key: string, dest: string, signal?: AbortSignal): Promise<void>;
  /** Every key under `prefix`. */
  list(prefix: string): AsyncIterable<RemoteObject>;
}

export interface RemoteConfig {
  url: string;
  /** S3: a custom endpoint (MinIO, R2, GCS), e.g. http://127.0.0.1:9000. */
  endpoint?: string;
  region?: string;
  /** S3: path-style addressing (bucket in the path), needed by most non-AWS servers. */
  path_style?: boolean;
}

export interface ProjectConfig {
  default?: string;
  remotes: Record<string, RemoteConfig>;
}

const configFile = (root: string) => path.join(root, '.pipeline', 'config.yaml');

export function readProjectConfig(root: string): ProjectConfig {
  const file = configFile(root);
  if (!existsSync(file)) return { remotes: {} };
  try {
    const doc = (yaml.load(readFileSync(file, 'utf8')) ?? {}) as Partial<ProjectConfig>;
    return { default: doc.default, remotes: doc.remotes ?? {} };
  } catch (e) {
    const err = e as { mark?: { line: number }; reason?: string; message: string };
    throw new PipelineError({
      reason: 'yaml',
      file: '.pipeline/config.yaml',
      line: err.mark ? err.mark.line + 1 : undefined,
      message: err.reason ?? err.message,
    });
  }
}

export function writeProjectConfig(root: string, config: ProjectConfig): void {
  const file = configFile(root);
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(
    tmp,
    `# Remotes for \`pipeline push/pull\`. Committed; credentials never go here (environment / AWS chain).\n${yaml.dump(config, { sortKeys: true })}`,
  );
  renameSync(tmp, file);
}

/** The remote named `name`, or the default one. */
export async function openRemote(root: string, name?: string): Promise<Remote> {
  const config = readProjectConfig(root);
  const chosen =
    name ?? config.default ?? (Object.keys(config.remotes).length === 1 ? Object.keys(config.remotes)[0] : undefined);
  if (!chosen) {
    throw new PipelineError({
      reason: 'invalid-definition',
      message:
        'no remote configured: add one with `pipeline remote add NAME URL` (a folder path, file://… or s3://bucket/prefix)',
    });
  }
  const rc = config.remotes[chosen];
  if (!rc) {
    throw new PipelineError({
      reason: 'invalid-definition',
      message: `no remote named '${chosen}' (configured: ${Object.keys(config.remotes).join(', ') || 'none'})`,
    });
  }
  if (rc.url.startsWith('s3://')) {
    const { S3Remote } = await import('./remote-s3.ts');
    return new S3Remote(chosen, rc);
  }
  const { FolderRemote } = await import('./remote-folder.ts');
  const dir = rc.url.startsWith('file://') ? new URL(rc.url).pathname : path.resolve(root, rc.url);
  return new FolderRemote(chosen, dir);
}
