// The project's pipeline: which stages exist and how they connect. `npx tsx pipeline.ts run` brings
// everything up to date; `npx tsx pipeline.ts status` says what is stale and why.
//
// The ML stages (download -> embed -> split -> train -> evaluate -> report) land with their issues;
// each lives in stages/<verb-noun>.ts and is listed here.

import { definePipeline, runIfMain } from './engine/index.ts';

const pipeline = definePipeline([]);
export default pipeline;

await runIfMain(import.meta.url, pipeline);
