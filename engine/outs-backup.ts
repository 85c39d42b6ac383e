// Before a stage runs, its existing outs are moved aside (a rename: instant, same file system) and a
// journal says where they went. If the stage fails or is interrupted, its partial outs are removed and
// the old ones moved back, so the workspace and pipeline.lock agree again and nothing is lost. If the
// engine itself dies mid-stage, the next run finds the journal and restores the same way.
//
//   .pipeline/tmp/backup/<stage>/journal.json   [{ "out": "artifacts/model", "saved": "0" }, ...]
//   .pipeline/tmp/backup/<stage>/0              the old artifacts/model

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

interface JournalEntry {
  out: string;
  saved: string;
}

const backupRoot = (root: string) => path.join(root, '.pipeline', 'tmp', 'backup');

/** Move the stage's existing outs aside and create the parents of all its outs. */
export function backupOuts(root: string, stage: string, outs: string[]): void {
  const dir = path.join(backupRoot(root), stage);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const journal: JournalEntry[] = [];
  outs.forEach((out, i) => {
    const abs = path.join(root, out);
    mkdirSync(path.dirname(abs), { recursive: true });
    if (existsSync(abs)) journal.push({ out, saved: String(i) });
  });
  // Journal first: a crash between the write and the renames leaves entries whose saved copy is absent,
  // which restore skips (the out is still in place).
  writeFileSync(path.join(dir, 'journal.json'), JSON.stringify(journal));
  for (const j of journal) renameSync(path.join(root, j.out), path.join(dir, j.saved));
}

/** The stage failed: drop what it half-wrote, put the old outs back. Returns the paths restored. */
export function restoreOuts(root: string, stage: string, outs: string[]): string[] {
  const dir = path.join(backupRoot(root), stage);
  const file = path.join(dir, 'journal.json');
  const journal: JournalEntry[] = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : [];
  for (const out of new Set([...outs, ...journal.map((j) => j.out)])) {
    const saved = journal.find((j) => j.out === out);
    if (saved && !existsSync(path.join(dir, saved.saved))) continue;
    rmSync(path.join(root, out), { recursive: true, force: true });
  }
  const restored: string[] = [];
  for (const j of journal) {
    const from = path.join(dir, j.saved);
    if (!existsSync(from)) continue;
    renameSync(from, path.join(root, j.out));
    restored.push(j.out);
  }
  rmSync(dir, { recursive: true, force: true });
  return restored;
}

/** The stage succeeded: the old outs are no longer needed. */
export function discardBackup(root: string, stage: string): void {
  rmSync(path.join(backupRoot(root), stage), { recursive: true, force: true });
}

/** Stages whose backup survived an engine crash. */
export function pendingBackups(root: string): string[] {
  const dir = backupRoot(root);
  return existsSync(dir) ? readdirSync(dir) : [];
}
