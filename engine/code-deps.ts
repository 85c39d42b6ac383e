// A stage's code dependencies, found automatically: its own module and every local module it imports,
// transitively. esbuild resolves imports exactly as the runtime does (TS paths, index files, .js -> .ts),
// so we ask it for a metafile instead of parsing imports by hand. npm packages are left out (their
// versions are pinned by package-lock.json), and so is the engine itself: engine changes that alter
// results bump FINGERPRINT_VERSION instead.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PipelineError } from './failure.ts';

const ENGINE_DIR = path.dirname(fileURLToPath(import.meta.url));

/** For each module (absolute path), the project-relative paths of the local modules it pulls in, sorted. */
export async function findCodeDeps(root: string, modules: string[]): Promise<Map<string, string[]>> {
  const unique = [...new Set(modules)];
  const result = new Map<string, string[]>();
  if (unique.length === 0) return result;
  let metafile: import('esbuild').Metafile;
  try {
    const { build } = await import('esbuild');
    ({ metafile } = await build({
      absWorkingDir: root,
      entryPoints: unique,
      bundle: true,
      write: false,
      metafile: true,
      outdir: path.join(root, '.pipeline', 'code-deps-out'),
      platform: 'node',
      format: 'esm',
      packages: 'external',
      logLevel: 'silent',
      // Keep `import.meta.url` and top-level await legal: we only want the import graph.
      target: 'esnext',
    }));
  } catch (e) {
    throw new PipelineError({
      reason: 'invalid-definition',
      message: `cannot follow the imports of the stage modules: ${(e as Error).message.split('\n').slice(0, 4).join(' ')}`,
    });
  }
  for (const output of Object.values(metafile.outputs)) {
    if (!output.entryPoint) continue;
    const entry = path.resolve(root, output.entryPoint);
    const files = Object.keys(output.inputs)
      .map((rel) => path.resolve(root, rel))
      .filter((abs) => !abs.startsWith(ENGINE_DIR + path.sep) && !path.relative(root, abs).startsWith('..'))
      .map((abs) => path.relative(root, abs).split(path.sep).join('/'))
      .sort();
    result.set(entry, files);
  }
  for (const m of unique) if (!result.has(m)) result.set(m, [path.relative(root, m)]);
  return result;
}
