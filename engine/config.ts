// Config: `configs/<name>.yaml`, optionally `extends: <other>`, then `--set key=value` overrides.
// Keys are addressed with dots (`train.lr`); a leaf is anything that is not a plain mapping.
// Unknown keys are errors with the nearest known key suggested, because a typo in a sweep
// silently training the default is the worst kind of bug.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { closest, distance } from 'fastest-levenshtein';
import * as yaml from 'js-yaml';
import { PipelineError } from './failure.ts';

export type ConfigTree = Record<string, unknown>;

export interface Config {
  name: string;
  /** Files read, in order (base first): they are watched and reported. */
  files: string[];
  tree: ConfigTree;
}

const isMapping = (v: unknown): v is ConfigTree => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every leaf key in dotted form. */
export function leafKeys(tree: ConfigTree, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(tree)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isMapping(v) && Object.keys(v).length > 0) out.push(...leafKeys(v, key));
    else out.push(key);
  }
  return out;
}

export function getKey(tree: ConfigTree, key: string): unknown {
  let node: unknown = tree;
  for (const part of key.split('.')) {
    if (!isMapping(node) || !(part in node)) return undefined;
    node = node[part];
  }
  return node;
}

export function hasKey(tree: ConfigTree, key: string): boolean {
  let node: unknown = tree;
  for (const part of key.split('.')) {
    if (!isMapping(node) || !(part in node)) return false;
    node = node[part];
  }
  return true;
}

function setKey(tree: ConfigTree, key: string, value: unknown): void {
  const parts = key.split('.');
  let node = tree;
  for (const part of parts.slice(0, -1)) {
    if (!isMapping(node[part])) node[part] = {};
    node = node[part] as ConfigTree;
  }
  node[parts[parts.length - 1]] = value;
}

/** The nearest of `candidates` to `key`, if it is near enough to be a plausible typo. */
export function nearest(key: string, candidates: string[]): string | undefined {
  if (candidates.length === 0) return undefined;
  const best = closest(key, candidates);
  return distance(key, best) <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

export function unknownKey(key: string, tree: ConfigTree, where: string): PipelineError {
  return new PipelineError({ reason: 'unknown-config-key', key, where, suggestion: nearest(key, leafKeys(tree)) });
}

function parseYaml(file: string, text: string, root: string): unknown {
  try {
    return yaml.load(text, { filename: file });
  } catch (e) {
    const err = e as { mark?: { line: number; column: number }; reason?: string; message: string };
    throw new PipelineError({
      reason: 'yaml',
      file: path.relative(root, file),
      line: err.mark ? err.mark.line + 1 : undefined,
      column: err.mark ? err.mark.column + 1 : undefined,
      message: err.reason ?? err.message,
    });
  }
}

function available(dir: string): string[] {
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => f.slice(0, -5))
        .sort()
    : [];
}

function loadFile(root: string, name: string, chain: string[]): { tree: ConfigTree; files: string[] } {
  const dir = path.join(root, 'configs');
  const file = path.join(dir, `${name}.yaml`);
  if (!existsSync(file)) {
    // A project with no configs at all simply has an empty config.
    if (name === 'default' && chain.length === 0 && available(dir).length === 0) return { tree: {}, files: [] };
    throw new PipelineError({ reason: 'missing-config', name, available: available(dir) });
  }
  if (chain.includes(name)) {
    throw new PipelineError({
      reason: 'invalid-definition',
      message: `config 'extends' loops: ${[...chain, name].join(' -> ')}`,
    });
  }
  const doc = parseYaml(file, readFileSync(file, 'utf8'), root) ?? {};
  if (!isMapping(doc)) {
    throw new PipelineError({
      reason: 'yaml',
      file: path.relative(root, file),
      message: 'the top level must be a mapping of keys',
    });
  }
  const { extends: base, ...own } = doc;
  if (base === undefined) return { tree: own, files: [file] };
  if (typeof base !== 'string') {
    throw new PipelineError({
      reason: 'yaml',
      file: path.relative(root, file),
      message: "'extends' must be a config name",
    });
  }
  const parent = loadFile(root, base, [...chain, name]);
  // A child config may only override what its base defines: a new key there is almost always a typo.
  for (const key of leafKeys(own)) {
    if (!hasKey(parent.tree, key))
      throw unknownKey(key, parent.tree, `in configs/${name}.yaml, not defined by its base '${base}'`);
  }
  const tree = structuredClone(parent.tree);
  for (const key of leafKeys(own)) setKey(tree, key, getKey(own, key));
  return { tree, files: [...parent.files, file] };
}

/**
 * Parse one `--set` argument. `key=value` must name an existing key; `+key=value` adds a new one.
 * The value is YAML, so `0.0005` is a number, `[64, 32]` a list and `relu` a string.
 */
export function applySet(tree: ConfigTree, arg: string): void {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new PipelineError({ reason: 'bad-set', arg, message: "expected '='" });
  const adding = arg.startsWith('+');
  const key = arg.slice(adding ? 1 : 0, eq).trim();
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(key)) {
    throw new PipelineError({ reason: 'bad-set', arg, message: `'${key}' is not a dotted key` });
  }
  let value: unknown;
  try {
    value = yaml.load(arg.slice(eq + 1));
  } catch (e) {
    throw new PipelineError({
      reason: 'bad-set',
      arg,
      message: `the value is not valid YAML (${(e as Error).message.split('\n')[0]})`,
    });
  }
  if (!adding && !hasKey(tree, key)) throw unknownKey(key, tree, `in --set ${arg}; use +${key}=... to add a new key`);
  if (!adding && isMapping(getKey(tree, key)) && !isMapping(value)) {
    throw new PipelineError({ reason: 'bad-set', arg, message: `'${key}' is a group of keys, not a value` });
  }
  setKey(tree, key, value ?? null);
}

export function loadConfig(root: string, name = 'default', sets: string[] = []): Config {
  const { tree, files } = loadFile(root, name, []);
  for (const arg of sets) applySet(tree, arg);
  return { name, files, tree };
}

/**
 * Resolve a stage's param patterns into (leaf key -> value). `train.*` (or `train`) expands to
 * every leaf under `train`, each tracked on its own so `status` can say which one changed.
 */
export function resolveParams(tree: ConfigTree, patterns: string[], stage: string): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const pattern of patterns) {
    const key = pattern.endsWith('.*') ? pattern.slice(0, -2) : pattern;
    if (!hasKey(tree, key)) throw unknownKey(key, tree, `param of stage '${stage}'`);
    const value = getKey(tree, key);
    if (isMapping(value) && Object.keys(value).length > 0) {
      for (const leaf of leafKeys(value, key)) out.set(leaf, getKey(tree, leaf));
    } else out.set(key, value);
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The nested object a stage sees as `ctx.params`. */
export function nestParams(params: Map<string, unknown>): ConfigTree {
  const tree: ConfigTree = {};
  for (const [k, v] of params) setKey(tree, k, structuredClone(v));
  return tree;
}

/**
 * `${train.lr}` in a shell stage's cmd becomes the value of that param (which the stage must declare,
 * so that a change to it reruns the stage). Lists and mappings become JSON.
 */
export function interpolate(cmd: string, params: Map<string, unknown>, stage: string): string {
  return cmd.replace(/\$\{([A-Za-z0-9_.-]+)\}/g, (_, key: string) => {
    if (!params.has(key)) {
      throw new PipelineError({
        reason: 'invalid-definition',
        message: `stage '${stage}' uses \${${key}} in its cmd but does not list '${key}' in its params`,
      });
    }
    const v = params.get(key);
    return typeof v === 'string' ? v : JSON.stringify(v);
  });
}
