// The `report` stage: one readable page about the run, from what the upstream stages recorded.
//
//   artifacts/metrics.json            (evaluate)  ┐
//   artifacts/train/history.json      (train)     │     reports/latest/report.md     charts as image links
//   artifacts/embeddings/meta.json    (embed)     ├──>  reports/latest/report.html   self-contained
//   artifacts/split/summary.json      (split)     │     reports/latest/*.svg         the charts
//   data/faces/manifest.json          (download)  ┘
//
// It also shows pipeline.lock (hashes) as of when it ran. The lock is not a dep: the engine rewrites it
// after every stage, so depending on it would make the report stale forever.
//
// It declares every config section it prints, so the YAML in the report is what the run used, and any
// config change reruns it (cheap: a second or two).

import { stage } from '../engine/index.ts';

export interface ReportParams {
  /** `report.title`: the page title; empty or absent: `<target> classifier on <dataset>`. */
  report?: { title?: string };
  data: Record<string, unknown>;
  labels: Record<string, unknown>;
  embed: Record<string, unknown>;
  split: Record<string, unknown>;
  train: Record<string, unknown>;
}

export default stage<ReportParams>('report', {
  description: 'report.md + report.html with charts -> reports/latest',
  deps: [
    'artifacts/metrics.json',
    'artifacts/train',
    'artifacts/embeddings/meta.json',
    'artifacts/split/summary.json',
    'data/faces/manifest.json',
  ],
  params: ['report.*', 'data.*', 'labels.*', 'embed.*', 'split.*', 'train.*'],
  // role report: `exp run` copies it to reports/<experiment>/ before its workspace goes.
  outs: [{ path: 'reports/latest', role: 'report' }],
  async run(ctx) {
    const { readReportInputs } = await import('./report/inputs.ts');
    const { renderRunReport, writeReportFiles } = await import('./report/report-doc.ts');
    const [metrics, trainDir, embedMeta, split, manifest] = ctx.deps;
    const inputs = readReportInputs({ metrics, trainDir, embedMeta, split, manifest }, ctx.root);
    const { report: settings, ...config } = ctx.params;
    const report = await renderRunReport(inputs, config, { title: settings?.title });
    const files = writeReportFiles(ctx.outs[0], report);
    ctx.log.info(`${files.length} files in reports/latest: open reports/latest/report.html`);
    if (inputs.embed.note) ctx.log.warn(`embeddings from a generated model (${inputs.embed.model}), NOT CLIP`);
  },
});
