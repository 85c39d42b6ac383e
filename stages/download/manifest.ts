// The dataset manifest that downstream stages read: one entry per usable image, with its label.
// Written whole to a temp file and renamed, so a reader never sees half a manifest.

import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

export interface ManifestItem {
  /** FFHQ image number or synthetic index, 5 digits. */
  id: string;
  /** Relative to the dataset folder. */
  path: string;
  bytes: number;
  md5: string;
  label: string;
  attributes: Record<string, string | number | boolean>;
}

export interface Manifest {
  dataset: string;
  source: string;
  target: string;
  /** Distinct labels, sorted: the class list downstream stages use. */
  classes: string[];
  /** Why images were left out (no face, malformed label row, no label, …) and how many. */
  excluded: Record<string, number>;
  /** What produced it, for the report: generator seed, variant, mirror, label URL. */
  provenance: Record<string, string | number>;
  items: ManifestItem[];
}

export const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');

export function readManifest(file: string): Manifest | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
}

export function writeManifest(file: string, m: Omit<Manifest, 'classes'>): Manifest {
  const items = [...m.items].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const full: Manifest = { ...m, classes: [...new Set(items.map((i) => i.label))].sort(), items };
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(full, null, 1)}\n`);
  renameSync(tmp, file);
  return full;
}
