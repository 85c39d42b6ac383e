// The engine's public surface for pipeline.ts and stage modules.
export { runIfMain } from './cli.ts';
export { definePipeline, stage } from './define.ts';
export type { OutSpec, Pipeline, ProgressUpdate, Stage, StageContext, StageDefinition } from './types.ts';
