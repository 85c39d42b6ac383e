// The test rig: a real temp project on disk, the real CLI in a child process, and a counting stage
// that proves what ran (each TS stage made by `countingStage` appends its name to runs.log).

import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execa, type ResultPromise } from 'execa';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ENGINE = path.join(REPO, 'engine', 'index.ts');
const TSX = fileURLToPath(import.meta.resolve('tsx'));

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Loaded into a child with `--import`: any connection beyond loopback throws (tests run offline). */
export const NO_NETWORK = path.join(REPO, 'test', 'no-network.mjs');

/** A repository copy's pipeline with only the `model` and `embed` stages: the faces are the caller's. */
export const MODEL_EMBED_PIPELINE = `import { definePipeline, runIfMain } from './engine/index.ts';
import embed from './stages/embed-clip.ts';
import model from './stages/fetch-model.ts';
const pipeline = definePipeline([model, embed]);
export default pipeline;
await runIfMain(import.meta.url, pipeline);
`;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Running, not a zombie (in a container, nobody may reap orphans). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

export class Project {
  /** Extra environment for every CLI child (e.g. NODE_OPTIONS to block the network). */
  env: Record<string, string> = {};

  constructor(readonly dir: string) {}

  /** Every CLI child from now on refuses connections beyond 127.0.0.1 / ::1. */
  offline(): this {
    this.env.NODE_OPTIONS = `--import ${pathToFileURL(NO_NETWORK).href}`;
    return this;
  }

  /** A copy of this repository's pipeline (pipeline.ts, stages/, configs/), sharing its engine and packages. */
  static repoCopy(): Project {
    const dir = mkdtempSync(path.join(tmpdir(), 'pipeline-repo-'));
    for (const f of ['pipeline.ts', 'package.json', 'stages', 'configs'])
      cpSync(path.join(REPO, f), path.join(dir, f), { recursive: true });
    for (const f of ['engine', 'node_modules']) symlinkSync(path.join(REPO, f), path.join(dir, f));
    return new Project(dir);
  }

  static create(files: Record<string, string>): Project {
    const dir = mkdtempSync(path.join(tmpdir(), 'pipeline-test-'));
    const p = new Project(dir);
    p.write('package.json', JSON.stringify({ type: 'module' }));
    for (const [f, text] of Object.entries(files)) p.write(f, text);
    return p;
  }

  path(rel: string): string {
    return path.join(this.dir, rel);
  }

  write(rel: string, text: string): void {
    mkdirSync(path.dirname(this.path(rel)), { recursive: true });
    writeFileSync(this.path(rel), text);
  }

  read(rel: string): string {
    return readFileSync(this.path(rel), 'utf8');
  }

  exists(rel: string): boolean {
    return existsSync(this.path(rel));
  }

  /** Start the CLI (`node --import tsx pipeline.ts ...args`) without waiting. */
  spawn(args: string[]): ResultPromise<{ reject: false }> {
    return execa(process.execPath, ['--import', TSX, 'pipeline.ts', ...args], {
      cwd: this.dir,
      reject: false,
      env: { FORCE_COLOR: '0', NO_COLOR: '1', ...this.env },
    }) as unknown as ResultPromise<{ reject: false }>;
  }

  async cli(...args: string[]): Promise<CliResult> {
    const r = await this.spawn(args);
    return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  /** Names of the counting stages that ran since the last call (and forget them). */
  runs(): string[] {
    const f = this.path('runs.log');
    if (!existsSync(f)) return [];
    const names = readFileSync(f, 'utf8').split('\n').filter(Boolean);
    rmSync(f);
    return names.sort();
  }

  async statusJson(
    ...args: string[]
  ): Promise<{ stages: Array<{ name: string; state: string; reasons: Array<Record<string, unknown>> }> }> {
    const r = await this.cli('status', '--json', ...args);
    if (r.exitCode !== 0) throw new Error(`status failed: ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A stage module: reads its deps (files), writes `out` = transform(concatenated deps + params), and logs
 * its name to runs.log. `body` can replace the transform; it sees `input` (string) and `ctx`.
 */
export function countingStage(
  name: string,
  opts: { deps: string[]; outs: string[]; params?: string[]; body?: string; imports?: string },
): string {
  return `import { appendFileSync, readFileSync, writeFileSync, statSync, readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { stage } from ${JSON.stringify(ENGINE)};
${opts.imports ?? ''}
export default stage(${JSON.stringify(name)}, {
  deps: ${JSON.stringify(opts.deps)},
  outs: ${JSON.stringify(opts.outs)},
  params: ${JSON.stringify(opts.params ?? [])},
  async run(ctx) {
    appendFileSync(ctx.path('runs.log'), ${JSON.stringify(name)} + '\\n');
    const list = (dir) => readdirSync(dir).sort().join(',');
    const input = ctx.deps
      .map((d) => d.includes('*') ? list(dirname(d)) : statSync(d).isDirectory() ? list(d) : readFileSync(d, 'utf8'))
      .join('|');
    ${opts.body ?? `writeFileSync(ctx.outs[0], ${JSON.stringify(name)} + ':' + input + ':' + JSON.stringify(ctx.params));`}
  },
});
`;
}

/** pipeline.ts importing `stages/<name>.ts` for each name. */
export function pipelineFile(names: string[], extra = ''): string {
  return `import { definePipeline, runIfMain } from ${JSON.stringify(ENGINE)};
${names.map((n, i) => `import s${i} from './stages/${n}.ts';`).join('\n')}
${extra}
const pipeline = definePipeline([${names.map((_, i) => `s${i}`).join(', ')}]);
export default pipeline;
await runIfMain(import.meta.url, pipeline);
`;
}

/**
 * The standard chain:  data/raw.txt -> prepare -> artifacts/clean.txt -> train -> artifacts/model.txt
 *                                                                      -> evaluate (also reads model)
 * plus configs/default.yaml with train.lr, train.epochs, prepare.lower and an unread key.
 */
export function chainProject(): Project {
  return Project.create({
    'data/raw.txt': 'Hello World\n',
    'configs/default.yaml':
      'prepare:\n  lower: true\ntrain:\n  lr: 0.001\n  epochs: 3\nunused:\n  note: nobody reads this\n',
    'stages/helpers.ts': `export const tidy = (s: string) => s.trim();\n`,
    'stages/prepare.ts': countingStage('prepare', {
      deps: ['data/raw.txt'],
      outs: ['artifacts/clean.txt'],
      params: ['prepare.lower'],
      imports: `import { tidy } from './helpers.ts';`,
      body: `writeFileSync(ctx.outs[0], ctx.params.prepare.lower ? tidy(input).toLowerCase() : tidy(input));`,
    }),
    'stages/train.ts': countingStage('train', {
      deps: ['artifacts/clean.txt'],
      outs: ['artifacts/model.txt'],
      params: ['train.*'],
    }),
    'stages/evaluate.ts': countingStage('evaluate', {
      deps: ['artifacts/model.txt', 'artifacts/clean.txt'],
      outs: ['artifacts/metrics.json'],
      body: `writeFileSync(ctx.outs[0], JSON.stringify({ len: input.length }));`,
    }),
    'pipeline.ts': pipelineFile(['prepare', 'train', 'evaluate']),
  });
}
