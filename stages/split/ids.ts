// The embed stage's row index (artifacts/embeddings/ids.csv: row,id,label) and the split's id lists,
// read back by split, train and evaluate.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { PART_NAMES } from './stratify.ts';

export interface IdRow {
  row: number;
  id: string;
  label: string;
}

export function readIds(text: string, file = 'ids.csv'): IdRow[] {
  const records = parse(text, { columns: true, skip_empty_lines: true }) as Array<Record<string, string>>;
  return records.map((r, i) => {
    if (r.id === undefined || r.label === undefined) throw new Error(`${file}: row ${i + 1} has no id or label column`);
    return { row: Number(r.row ?? i), id: r.id, label: r.label };
  });
}

/** The three id lists of a split folder, as row numbers of the embedding matrix. */
export function readSplitRows(splitDir: string, rows: IdRow[]): Record<(typeof PART_NAMES)[number], number[]> {
  const byId = new Map(rows.map((r) => [r.id, r.row]));
  const out = {} as Record<(typeof PART_NAMES)[number], number[]>;
  for (const name of PART_NAMES) {
    const file = path.join(splitDir, `${name}.txt`);
    const ids = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    out[name] = ids.map((id) => {
      const r = byId.get(id);
      if (r === undefined) {
        throw new Error(
          `${file} names image ${id}, which has no embedding: rerun split (npx tsx pipeline.ts run split)`,
        );
      }
      return r;
    });
  }
  return out;
}
