// The `split` stage: a stratified train / val / test split of the embedded images.
//
//   artifacts/embeddings/ids.csv  ->  artifacts/split/{train,val,test}.txt   one id per line, sorted
//                                     artifacts/split/summary.json            counts per part and class
//
// It reads only the row index, not the embeddings: changing split.seed or split.ratios reruns this and
// what is downstream, nothing upstream.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stage } from '../engine/index.ts';
import { readIds } from './split/ids.ts';
import { checkRatios, PART_NAMES, stratifiedSplit } from './split/stratify.ts';

export interface SplitParams {
  split: { ratios: number[]; seed: number };
}

export default stage<SplitParams>('split', {
  description: 'stratified train/val/test split -> artifacts/split',
  deps: ['artifacts/embeddings/ids.csv'],
  params: ['split.*'],
  outs: ['artifacts/split'],
  run(ctx) {
    const ratios = checkRatios(ctx.params.split.ratios);
    const rows = readIds(readFileSync(ctx.deps[0], 'utf8'), ctx.deps[0]);
    const parts = stratifiedSplit(rows, ratios, ctx.params.split.seed);
    const [out] = ctx.outs;
    mkdirSync(out, { recursive: true });
    const label = new Map(rows.map((r) => [r.id, r.label]));
    const summary: Record<string, { total: number; classes: Record<string, number> }> = {};
    for (const name of PART_NAMES) {
      writeFileSync(path.join(out, `${name}.txt`), parts[name].map((id) => `${id}\n`).join(''));
      const classes: Record<string, number> = {};
      for (const id of parts[name]) {
        const c = label.get(id) as string;
        classes[c] = (classes[c] ?? 0) + 1;
      }
      summary[name] = { total: parts[name].length, classes };
    }
    writeFileSync(
      path.join(out, 'summary.json'),
      `${JSON.stringify({ ratios, seed: ctx.params.split.seed, parts: summary }, null, 2)}\n`,
    );
    ctx.log.info(PART_NAMES.map((n) => `${n} ${parts[n].length}`).join(', '));
  },
});
