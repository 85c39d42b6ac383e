// What the report reads: the upstream stages' records, in the shapes those stages write, read
// defensively (a missing optional field shows as "—", a missing required one names the file and the
// stage that writes it), and pipeline.lock for the hashes.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as yaml from 'js-yaml';
import type { Manifest } from '../download/manifest.ts';
import type { EmbedMeta } from '../embed/embed-all.ts';

/** One epoch of artifacts/train/history.json. */
export interface EpochRecord {
  epoch: number;
  train_loss: number;
  train_acc: number;
  val_loss: number;
  val_acc: number;
  lr?: number;
  seconds?: number;
}

/** artifacts/train/history.json, written by the train stage. */
export interface TrainHistory {
  backend?: string;
  best_epoch?: number;
  stopped_epoch?: number;
  samples_per_second?: number;
  /** Whole training time; when absent, the epochs' own seconds are summed. */
  seconds?: number;
  history: EpochRecord[];
}

export interface SplitScores {
  accuracy: number;
  macro_f1?: number;
  loss?: number;
  n?: number;
}

export interface ClassMetrics {
  class: string;
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface Confusion {
  /** Row i is true class labels[i]; column j the prediction labels[j]. */
  labels: string[];
  matrix: number[][];
}

/** artifacts/metrics.json, written by the evaluate stage. */
export interface Metrics {
  backend?: string;
  classes?: string[];
  val: SplitScores;
  test: SplitScores;
  /** val − test accuracy, as the seed study reports it. */
  generalisation_gap?: number;
  per_class?: ClassMetrics[];
  confusion?: Confusion;
  seconds?: number;
}

/** artifacts/split/summary.json, written by the split stage. */
export interface SplitSummary {
  ratios: number[];
  seed: number;
  parts: Record<string, { total: number; classes: Record<string, number> }>;
}

/** The manifest without its items (which can be 70,000 long), plus the counts the report shows. */
export interface DatasetSummary extends Omit<Manifest, 'items'> {
  count: number;
  classCounts: Record<string, number>;
}

export type EmbedInfo = Partial<EmbedMeta> & { model: string };

/** One stage's entry in pipeline.lock, as far as the report shows it. */
export interface LockedStage {
  fingerprint?: string;
  code?: Record<string, string>;
  deps?: Record<string, { hash: string | null; size?: number; files?: number }>;
  outs?: Record<string, { hash: string | null; size?: number; files?: number }>;
}

export interface ReportInputs {
  metrics: Metrics;
  history: TrainHistory;
  embed: EmbedInfo;
  split: SplitSummary;
  dataset: DatasetSummary;
  /** pipeline.lock's stages as of when the report ran; undefined when there is no lock yet. */
  lock?: Record<string, LockedStage>;
}

/** The files the report stage depends on, as absolute paths (the stage's ctx.deps, in order). */
export interface ReportFiles {
  metrics: string;
  trainDir: string;
  embedMeta: string;
  split: string;
  manifest: string;
}

function readJson<T>(file: string, producer: string): T {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new Error(`${file}: missing; it is written by the '${producer}' stage (run \`pipeline run ${producer}\`)`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message}); rerun the '${producer}' stage`);
  }
}

function need(ok: unknown, file: string, what: string, producer: string): void {
  if (!ok) throw new Error(`${file}: ${what}; rerun the '${producer}' stage, or check that it writes this shape`);
}

export function readMetrics(file: string): Metrics {
  const m = readJson<Metrics>(file, 'evaluate');
  need(typeof m?.test?.accuracy === 'number', file, 'no test.accuracy', 'evaluate');
  need(typeof m?.val?.accuracy === 'number', file, 'no val.accuracy', 'evaluate');
  return m;
}

export function readHistory(trainDir: string): TrainHistory {
  const file = path.join(trainDir, 'history.json');
  const h = readJson<TrainHistory>(file, 'train');
  need(Array.isArray(h?.history), file, 'no history list', 'train');
  return h;
}

export function readEmbedMeta(file: string): EmbedInfo {
  const m = readJson<EmbedInfo>(file, 'embed');
  need(typeof m?.model === 'string', file, 'no model', 'embed');
  return m;
}

export function readSplitSummary(file: string): SplitSummary {
  const s = readJson<SplitSummary>(file, 'split');
  need(s?.parts && typeof s.parts === 'object', file, 'no parts', 'split');
  return s;
}

export function readDataset(file: string): DatasetSummary {
  const { items, ...rest } = readJson<Manifest>(file, 'download');
  need(Array.isArray(items), file, 'no items', 'download');
  const classCounts: Record<string, number> = {};
  for (const c of rest.classes ?? []) classCounts[c] = 0;
  for (const it of items) classCounts[it.label] = (classCounts[it.label] ?? 0) + 1;
  return { ...rest, count: items.length, classCounts };
}

/** pipeline.lock's stages, or undefined when the project has no lock (or an unreadable one). */
export function readLockStages(root: string): Record<string, LockedStage> | undefined {
  const file = path.join(root, 'pipeline.lock');
  if (!existsSync(file)) return undefined;
  try {
    const doc = yaml.load(readFileSync(file, 'utf8')) as { stages?: Record<string, LockedStage> } | null;
    return doc?.stages ?? undefined;
  } catch {
    return undefined;
  }
}

export function readReportInputs(files: ReportFiles, root: string): ReportInputs {
  return {
    metrics: readMetrics(files.metrics),
    history: readHistory(files.trainDir),
    embed: readEmbedMeta(files.embedMeta),
    split: readSplitSummary(files.split),
    dataset: readDataset(files.manifest),
    lock: readLockStages(root),
  };
}
