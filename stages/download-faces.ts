// The `download` stage: the face images and their labels, as data/faces/ (images + manifest.json).
//
//   data.source: synthetic (default, offline)  generated faces, target eye_state ("blink")
//   data.source: ffhq                          the real FFHQ thumbnails or images, verified by md5,
//                                              labels from FFHQ-Aging (CSV) or the Face-API JSONs
//
// The outs are persisted: images already there and verified are never fetched or rendered again.

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { stage } from '../engine/index.ts';
import { makeSynthetic } from './download/make-synthetic.ts';

export interface DownloadParams {
  data: {
    source: 'synthetic' | 'ffhq';
    count: number;
    seed: number;
    size: number;
    variant: 'thumbnails128x128' | 'images1024x1024';
    limit: number;
    mirror: string;
    jobs: number;
  };
  labels: {
    source: 'synthetic' | 'ffhq-aging' | 'ffhq-features';
    target: string;
    url: string;
    min_confidence: number;
  };
}

export default stage<DownloadParams>('download', {
  description: 'face images + labels -> data/faces (manifest.json)',
  params: ['data.*', 'labels.*'],
  // data/sources keeps what the images were chosen and labelled from (FFHQ's metadata, label files):
  // an out of its own, so downstream stages that read data/faces are not tied to it.
  outs: [
    { path: 'data/faces', persist: true },
    { path: 'data/sources', persist: true },
  ],
  async run(ctx) {
    const { data, labels } = ctx.params;
    const [out, sources] = ctx.outs;
    mkdirSync(sources, { recursive: true });
    if (data.source === 'synthetic') {
      if (labels.source !== 'synthetic') {
        throw new Error(
          `labels.source '${labels.source}' needs data.source: ffhq; synthetic faces carry their own labels`,
        );
      }
      await makeSynthetic(
        ctx,
        out,
        { count: data.count, seed: data.seed, size: data.size, jobs: data.jobs },
        labels.target,
      );
    } else if (data.source === 'ffhq') {
      const { downloadFfhq } = await import('./download/ffhq.ts');
      await downloadFfhq(ctx, out, sources, data, labels);
    } else {
      throw new Error(`data.source '${data.source}' is unknown: use synthetic or ffhq`);
    }
    ctx.log.info(`manifest: ${path.relative(ctx.root, path.join(out, 'manifest.json'))}`);
  },
});
