// `data.source: synthetic`: render `data.count` faces into data/faces/images/, incrementally: a face
// whose file is already there with the bytes the last manifest recorded is kept, so raising the count
// renders only the new ones.

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pLimit from 'p-limit';
import type { StageContext } from '../../engine/index.ts';

/** What these helpers use of a stage's context. */
type StageIO = Pick<StageContext, 'signal' | 'progress' | 'log'>;

import { type Manifest, type ManifestItem, md5, readManifest, writeManifest } from './manifest.ts';
import { faceAttributes, renderFace, SUNGLASSES_SHARE } from './synthetic-faces.ts';

export interface SyntheticParams {
  count: number;
  seed: number;
  size: number;
  jobs: number;
}

const id5 = (i: number) => String(i).padStart(5, '0');

export async function makeSynthetic(ctx: StageIO, out: string, p: SyntheticParams, target: string): Promise<Manifest> {
  const attributes = Object.keys(faceAttributes(p.seed, 0));
  if (!attributes.includes(target)) {
    throw new Error(
      `labels.target '${target}' is not an attribute of the synthetic faces: use one of ${attributes.join(', ')}`,
    );
  }
  const imagesDir = path.join(out, 'images');
  mkdirSync(imagesDir, { recursive: true });
  const manifestFile = path.join(out, 'manifest.json');
  const previous = readManifest(manifestFile);
  const sameRecipe = previous?.provenance.seed === p.seed && previous?.provenance.size === p.size;
  const known = new Map((sameRecipe ? previous.items : []).map((i) => [i.id, i]));

  const items: ManifestItem[] = new Array(p.count);
  let done = 0;
  let rendered = 0;
  const limit = pLimit(Math.max(1, p.jobs));
  await Promise.all(
    Array.from({ length: p.count }, (_, i) =>
      limit(async () => {
        ctx.signal.throwIfAborted();
        const id = id5(i);
        const rel = `images/${id}.png`;
        const file = path.join(out, rel);
        const old = known.get(id);
        if (old && existsSync(file) && md5(readFileSync(file)) === old.md5) items[i] = old;
        else {
          const { png, attributes } = await renderFace(p.seed, i, p.size);
          writeFileSync(file, png);
          rendered++;
          items[i] = { id, path: rel, bytes: png.length, md5: md5(png), label: '', attributes: { ...attributes } };
        }
        items[i].label = String(items[i].attributes[target]);
        done++;
        ctx.progress({ done, total: p.count, unit: 'faces', message: `${rendered} rendered` });
      }),
    ),
  );
  // Faces beyond a lowered count go, so the folder holds exactly what the manifest lists.
  const keep = new Set(items.map((i) => path.basename(i.path)));
  for (const f of readdirSync(imagesDir)) if (!keep.has(f)) rmSync(path.join(imagesDir, f), { force: true });

  ctx.log.info(`synthetic faces: ${p.count} (${rendered} rendered, ${p.count - rendered} kept), target '${target}'`);
  return writeManifest(manifestFile, {
    dataset: 'synthetic-faces',
    source: 'synthetic',
    target,
    excluded: {},
    provenance: {
      generator: 'stages/download/synthetic-faces.ts',
      seed: p.seed,
      size: p.size,
      sunglasses_share: SUNGLASSES_SHARE,
      note: 'generated faces, not FFHQ: set data.source: ffhq for the real dataset',
    },
    items,
  });
}
