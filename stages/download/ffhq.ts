// `data.source: ffhq`: the official metadata file, then the chosen variant's files, each verified against
// the official md5 and size whatever server they come from, then the labels, joined by image number.
//
//   <mirror>/ffhq-dataset-v2.json                  keys "0".."69999": { image, thumbnail, in_the_wild, ... }
//   <mirror>/thumbnails128x128/00000/00000.png     each block's file_path under the mirror
//
// Without `data.mirror` the official `file_url`s are used (Google Drive: slow, and quota-limited).

import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { StageContext } from '../../engine/index.ts';

/** What these helpers use of a stage's context. */
type StageIO = Pick<StageContext, 'signal' | 'progress' | 'log'>;

import type { DownloadParams } from '../download-faces.ts';
import { fetchFile } from './fetch-file.ts';
import { fetchMany } from './fetch-many.ts';
import { collectFaceApi, type LabelTable, readAgingCsv } from './labels.ts';
import { type ManifestItem, writeManifest } from './manifest.ts';

/** The official metadata file (NVlabs/ffhq-dataset's download script). */
export const OFFICIAL_METADATA_URL = 'https://drive.google.com/uc?id=16N0RV4fHI6joBuKbQAoG34V_cQk7vxSA';
/** The label sets' public raw URLs. */
export const AGING_LABELS_URL =
  'https://raw.githubusercontent.com/royorel/FFHQ-Aging-Dataset/master/ffhq_aging_labels.csv';
export const FACE_API_LABELS_URL = 'https://raw.githubusercontent.com/DCGM/ffhq-features-dataset/master';

interface FileBlock {
  file_url: string;
  file_path: string;
  file_size: number;
  file_md5: string;
}

interface MetadataEntry {
  category?: string;
  image: FileBlock;
  thumbnail: FileBlock;
  in_the_wild?: FileBlock;
}

const join = (base: string, rel: string) => `${base.replace(/\/+$/, '')}/${rel.replace(/^\/+/, '')}`;
const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

function parseMetadata(file: string, from: string): Record<string, MetadataEntry> {
  try {
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    if (typeof doc !== 'object' || doc === null || !('0' in doc)) throw new Error('no entry "0"');
    return doc;
  } catch (e) {
    // Not kept: a rerun fetches it again instead of failing on the same bad copy forever.
    rmSync(file, { force: true });
    throw new Error(
      `the FFHQ metadata from ${from} is truncated or malformed (${(e as Error).message.slice(0, 120)}); it was removed, rerun to fetch it again (or fix data.mirror)`,
    );
  }
}

async function readLabels(
  ctx: StageIO,
  cacheDir: string,
  labels: DownloadParams['labels'],
  ids: string[],
  jobs: number,
): Promise<LabelTable> {
  if (labels.source === 'ffhq-aging') {
    const csv = path.join(cacheDir, 'ffhq_aging_labels.csv');
    if (!existsSync(csv)) await fetchFile(labels.url || AGING_LABELS_URL, csv, { signal: ctx.signal });
    return readAgingCsv(readFileSync(csv, 'utf8'), { target: labels.target, minConfidence: labels.min_confidence });
  }
  if (labels.source === 'ffhq-features') {
    const base = labels.url || FACE_API_LABELS_URL;
    const dir = path.join(cacheDir, 'face-api');
    await fetchMany(
      ids.map((id) => ({ url: join(base, `json/${id}.json`), dest: path.join(dir, `${id}.json`) })),
      {
        jobs,
        signal: ctx.signal,
        onProgress: (p) => ctx.progress({ done: p.done, total: p.total, unit: 'label files' }),
      },
    );
    return collectFaceApi(
      ids.map((id) => ({ id, text: readFileSync(path.join(dir, `${id}.json`), 'utf8') })),
      labels.target,
    );
  }
  throw new Error(`labels.source '${labels.source}' is not an FFHQ label set: use ffhq-aging or ffhq-features`);
}

export async function downloadFfhq(
  ctx: StageIO,
  out: string,
  cacheDir: string,
  data: DownloadParams['data'],
  labels: DownloadParams['labels'],
): Promise<void> {
  const metaFile = path.join(cacheDir, 'ffhq-dataset-v2.json');
  const metaUrl = data.mirror ? join(data.mirror, 'ffhq-dataset-v2.json') : OFFICIAL_METADATA_URL;
  if (!existsSync(metaFile)) {
    ctx.log.info(`fetching the FFHQ metadata from ${metaUrl}`);
    await fetchFile(metaUrl, metaFile, { signal: ctx.signal });
  }
  const meta = parseMetadata(metaFile, metaUrl);
  const block = data.variant === 'images1024x1024' ? 'image' : 'thumbnail';
  if (data.variant !== 'images1024x1024' && data.variant !== 'thumbnails128x128') {
    throw new Error(`data.variant '${data.variant}' is unknown: use thumbnails128x128 or images1024x1024`);
  }
  const keys = Object.keys(meta)
    .map(Number)
    .sort((a, b) => a - b);
  const chosen = data.limit > 0 ? keys.slice(0, data.limit) : keys;
  const files = chosen.map((k) => ({ id: String(k).padStart(5, '0'), f: meta[String(k)][block] }));

  const got = await fetchMany(
    files.map(({ f }) => ({
      url: data.mirror ? join(data.mirror, f.file_path) : f.file_url,
      dest: path.join(out, f.file_path),
      size: f.file_size,
      md5: f.file_md5,
    })),
    {
      jobs: data.jobs,
      signal: ctx.signal,
      onProgress: (p) =>
        ctx.progress({
          done: p.done,
          total: p.total,
          unit: 'images',
          message: `${mb(p.bytes)} at ${mb(p.bytesPerSecond)}/s`,
        }),
    },
  );
  ctx.log.info(
    `FFHQ ${data.variant}: ${files.length} images (${got.fetched} fetched, ${mb(got.bytes)}; ${got.skipped} already here)`,
  );

  const table = await readLabels(
    ctx,
    cacheDir,
    labels,
    files.map((x) => x.id),
    data.jobs,
  );
  const byId = new Map(table.rows.map((r) => [r.id, r]));
  const items: ManifestItem[] = [];
  let unlabelled = 0;
  for (const { id, f } of files) {
    const row = byId.get(id);
    if (!row) {
      unlabelled++;
      continue;
    }
    items.push({
      id,
      path: f.file_path,
      bytes: f.file_size,
      md5: f.file_md5,
      label: row.label,
      attributes: row.attributes,
    });
  }
  for (const p of table.problems.slice(0, 5)) ctx.log.warn(`labels: ${p}`);
  writeManifest(path.join(out, 'manifest.json'), {
    dataset: `ffhq-${data.variant}`,
    source: 'ffhq',
    target: table.target,
    excluded: { ...table.excluded, unlabelled },
    provenance: {
      variant: data.variant,
      mirror: data.mirror || 'official file_url (Google Drive)',
      labels: labels.source,
      labels_url: labels.url || (labels.source === 'ffhq-aging' ? AGING_LABELS_URL : FACE_API_LABELS_URL),
      limit: data.limit,
    },
    items,
  });
}
