// The `model` stage: makes sure the image model the `embed` stage uses is on disk, under models/<id>/,
// in transformers.js's local layout. Its out is content-hashed like any other, so the model's file
// hashes are part of the embed stage's fingerprint: a different model file means new embeddings.
//
//   embed.model: generated/tiny-clip   generated here, deterministic seeded weights (NOT CLIP's): offline
//   embed.model: Xenova/clip-vit-base-patch32
//       models/<id>/ already complete  -> used as it is (put there by hand, or an earlier download)
//       else, embed.offline false      -> downloaded from embed.hub (resumable, retried)
//       else                           -> an error naming the folder and the files it needs

import { writeFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { type StageContext, stage } from '../engine/index.ts';
import {
  type Dtype,
  GENERATED_PREFIX,
  missingFiles,
  missingModelMessage,
  modelDir,
  modelFiles,
} from './embed/model-files.ts';

export interface ModelParams {
  embed: { model: string; revision: string; dtype: Dtype; offline: boolean; hub: string };
}

/** What `models/<id>/materialized.json` records, for the embed stage's meta and the report. */
export interface Materialized {
  id: string;
  source: 'generated' | 'local' | 'hub';
  revision: string;
  dtype: Dtype;
  files: Record<string, number>;
  note?: string;
}

const GENERATED: Record<string, { preset: 'tiny' | 'vit-b32'; note: string }> = {
  'generated/tiny-clip': {
    preset: 'tiny',
    note: 'a tiny random-features model in CLIP format, generated with seeded weights: NOT CLIP. Real CLIP: embed.model: Xenova/clip-vit-base-patch32',
  },
  'generated/vit-b32-random': {
    preset: 'vit-b32',
    note: "ViT-B/32's shapes with seeded random weights (for benchmarks): NOT CLIP",
  },
};

export default stage<ModelParams>('model', {
  description: 'the image model -> models/<id> (generated, local or from the hub)',
  params: ['embed.model', 'embed.revision', 'embed.dtype', 'embed.offline', 'embed.hub'],
  // Persisted: a model put there by hand, or a 350 MB download half done, is never moved aside.
  outs: [{ path: 'models', persist: true }],
  // A model copied into models/<id> by hand is the user's: when the folder changes, the stage runs and
  // adopts it, instead of the run-cache putting back the files it recorded before.
  runCache: false,
  async run(ctx) {
    const { model: id, revision, dtype, offline, hub } = ctx.params.embed;
    const [models] = ctx.outs;
    const dir = modelDir(models, id);
    let source: Materialized['source'];
    let note: string | undefined;
    if (id.startsWith(GENERATED_PREFIX)) {
      const gen = GENERATED[id];
      if (!gen) {
        throw new Error(`embed.model '${id}' is not a generated model: use ${Object.keys(GENERATED).join(' or ')}`);
      }
      const { writeClipFixture } = await import('./embed/clip-fixture.ts');
      ctx.log.info(`generating ${id} (${gen.preset}, seeded weights) in ${path.relative(ctx.root, dir)}`);
      await writeClipFixture(dir, { preset: gen.preset, seed: 0 });
      source = 'generated';
      note = gen.note;
    } else if (missingFiles(dir, dtype).length === 0) {
      ctx.log.info(`using the local copy of ${id} in ${path.relative(ctx.root, dir)}`);
      source = 'local';
    } else if (offline) {
      throw new Error(missingModelMessage(ctx.root, dir, id, dtype, missingFiles(dir, dtype)));
    } else {
      await downloadModel(ctx, hub, id, revision, dtype, dir);
      source = 'hub';
    }
    const files: Record<string, number> = {};
    for (const f of modelFiles(dtype)) files[f] = (await stat(path.join(dir, f))).size;
    const record: Materialized = { id, source, revision, dtype, files, ...(note ? { note } : {}) };
    writeFileSync(path.join(dir, 'materialized.json'), `${JSON.stringify(record, null, 2)}\n`);
  },
});

async function downloadModel(
  ctx: StageContext<ModelParams>,
  hub: string,
  id: string,
  revision: string,
  dtype: Dtype,
  dir: string,
): Promise<void> {
  const { fetchFile } = await import('./download/fetch-file.ts');
  const wanted = missingFiles(dir, dtype);
  let done = 0;
  for (const file of wanted) {
    const url = `${hub.replace(/\/$/, '')}/${id}/resolve/${encodeURIComponent(revision)}/${file}`;
    ctx.log.info(`downloading ${url}`);
    let bytes = 0;
    try {
      await fetchFile(url, path.join(dir, file), {
        signal: ctx.signal,
        onBytes: (d) => {
          bytes += d;
          ctx.progress({
            done,
            total: wanted.length,
            unit: 'files',
            message: `${file} ${(bytes / 2 ** 20).toFixed(1)} MB`,
          });
        },
      });
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      throw new Error(
        `${(e as Error).message}\n${missingModelMessage(ctx.root, dir, id, dtype, missingFiles(dir, dtype))}`,
      );
    }
    done++;
    ctx.progress({ done, total: wanted.length, unit: 'files' });
  }
}
