// The project's pipeline: which stages exist and how they connect. `npx tsx pipeline.ts run` brings
// everything up to date; `npx tsx pipeline.ts status` says what is stale and why.
//
//   download ──┐
//              ├─> embed -> split -> train -> evaluate -> report
//   model ─────┘
//
// Each stage lives in stages/<verb-noun>.ts. Heavy libraries are imported inside a stage's run(), so
// that `status` never pays for them.

import { definePipeline, runIfMain } from './engine/index.ts';
import download from './stages/download-faces.ts';
import embed from './stages/embed-clip.ts';
import evaluate from './stages/evaluate-model.ts';
import model from './stages/fetch-model.ts';
import split from './stages/split-data.ts';
import train from './stages/train-mlp.ts';
import report from './stages/write-report.ts';

const pipeline = definePipeline([download, model, embed, split, train, evaluate, report]);
export default pipeline;

await runIfMain(import.meta.url, pipeline);
