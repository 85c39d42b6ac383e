// Readers for the two public FFHQ label sets, turning each into one LabelTable shape so that the
// training stages do not care where a label came from:
//  - FFHQ-Aging `ffhq_aging_labels.csv`: one CSV row per image (age_group, gender, head pose, ...).
//  - "ffhq-features" Face-API output: one `json/NNNNN.json` file per image, a JSON array of faces.
// Bad rows are excluded and counted rather than thrown, because one broken row out of 70 000 must not stop
// the pipeline; a wrong target name is thrown, because it is a config mistake that would exclude everything.

import { parse } from 'csv-parse/sync';

export type AttributeValue = string | number | boolean;

export interface LabelRow {
  id: string; // 5-digit FFHQ image number, e.g. "00042"
  label: string;
  attributes: Record<string, AttributeValue>;
}

export interface LabelTable {
  target: string; // the column/attribute used as label
  rows: LabelRow[]; // sorted by id
  excluded: { noFace: number; malformed: number; lowConfidence: number; missingTarget: number };
  problems: string[]; // a few human-readable examples, not every one: the counts are in `excluded`
}

const MAX_PROBLEMS = 20;

// Collects the table while reading, so that both readers count and cap problems the same way.
class TableBuilder {
  readonly rows: LabelRow[] = [];
  readonly excluded = { noFace: 0, malformed: 0, lowConfidence: 0, missingTarget: 0 };
  readonly problems: string[] = [];
  private extraProblems = 0;
  private readonly seen = new Set<string>();

  constructor(readonly target: string) {}

  problem(text: string): void {
    if (this.problems.length < MAX_PROBLEMS) this.problems.push(text);
    else this.extraProblems++;
  }

  // A duplicate id would silently give one image two labels (and two places in a split), so it is malformed.
  add(row: LabelRow, where: string): void {
    if (this.seen.has(row.id)) {
      this.excluded.malformed++;
      this.problem(`${where}: duplicate image ${row.id}, keeping the first`);
      return;
    }
    this.seen.add(row.id);
    this.rows.push(row);
  }

  build(): LabelTable {
    const rows = [...this.rows].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const problems = [...this.problems];
    if (this.extraProblems > 0) problems.push(`... and ${this.extraProblems} more problems`);
    return { target: this.target, rows, excluded: { ...this.excluded }, problems };
  }
}

// FFHQ has 70 000 images named 00000..69999; accept "42", "00042" and pandas' "42.0".
function toId(raw: string | undefined): string | undefined {
  if (raw === undefined || !/^\d+(\.0*)?$/.test(raw)) return undefined;
  const n = Number(raw);
  return n < 100000 ? String(n).padStart(5, '0') : undefined;
}

// Strict: Number('') is 0 and Number('0x1f') is 31, neither of which is a number in these files.
const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

// Python writes missing floats as "nan"; treat that like an empty cell. "None" is NOT missing: it is a glasses value.
const isMissing = (raw: string | undefined): raw is undefined => raw === undefined || raw === '' || /^nan$/i.test(raw);

function convert(raw: string): AttributeValue {
  if (NUMBER.test(raw)) return Number(raw);
  if (/^(true|false)$/i.test(raw)) return raw.toLowerCase() === 'true';
  return raw;
}

export function readAgingCsv(text: string, opts: { target?: string; minConfidence?: number } = {}): LabelTable {
  const target = opts.target ?? 'age_group';
  const minConfidence = opts.minConfidence ?? 0;
  if (!Number.isFinite(minConfidence)) throw new Error(`minConfidence must be a number, got ${minConfidence}`);

  // The header comes through the columns callback so that a header-only file still has its columns checked.
  let header: string[] = [];
  const records = parse<{ record: Record<string, string>; info: { lines: number } }>(text, {
    columns: (names: string[]) => (header = names),
    trim: true,
    bom: true,
    skip_empty_lines: true,
    relax_column_count: true, // a short row becomes a row with missing cells, counted below, not a thrown parse
    info: true,
  });
  if (!header.includes(target)) {
    throw new Error(`label target "${target}" is not a column of the CSV; available columns: ${header.join(', ')}`);
  }
  const confidenceColumn = header.includes(`${target}_confidence`) ? `${target}_confidence` : undefined;

  const table = new TableBuilder(target);
  for (const { record, info } of records) {
    const where = `line ${info.lines}`;
    const id = toId(record.image_number);
    if (id === undefined) {
      table.excluded.malformed++;
      table.problem(`${where}: image_number ${JSON.stringify(record.image_number ?? '')} is not an image number`);
      continue;
    }
    const value = record[target];
    if (isMissing(value)) {
      table.excluded.malformed++;
      table.problem(`${where}: image ${id} has no ${target}`);
      continue;
    }
    if (confidenceColumn) {
      const raw = record[confidenceColumn];
      if (raw === undefined || !NUMBER.test(raw)) {
        table.excluded.malformed++;
        table.problem(`${where}: ${confidenceColumn} ${JSON.stringify(raw ?? '')} is not a number`);
        continue;
      }
      if (Number(raw) < minConfidence) {
        table.excluded.lowConfidence++;
        continue;
      }
    }
    const attributes: Record<string, AttributeValue> = {};
    for (const [column, raw] of Object.entries(record)) {
      if (column !== 'image_number' && !isMissing(raw)) attributes[column] = convert(raw);
    }
    table.add({ id, label: value, attributes }, where);
  }
  return table.build();
}

// ---- Face-API JSON ("ffhq-features") ----

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const field = (o: unknown, key: string): unknown => (isObject(o) ? o[key] : undefined);

function argmax(scores: unknown): string | undefined {
  let best: string | undefined;
  let bestScore = -Infinity;
  for (const [key, v] of Object.entries(isObject(scores) ? scores : {})) {
    const score = num(v);
    if (score !== undefined && score > bestScore) [best, bestScore] = [key, score];
  }
  return best;
}

// Each target: how to get a label out of faceAttributes. `undefined` means the attribute is absent.
// A value of the wrong type is reported as a string: the row is malformed, not just unlabelled.
const FACE_TARGETS: Record<string, (a: Json) => string | { bad: string } | undefined> = {
  gender: (a) => (a.gender == null ? undefined : typeof a.gender === 'string' ? a.gender : { bad: 'gender' }),
  glasses: (a) => (a.glasses == null ? undefined : typeof a.glasses === 'string' ? a.glasses : { bad: 'glasses' }),
  smile: (a) => {
    if (a.smile == null) return undefined;
    const s = num(a.smile);
    return s === undefined ? { bad: 'smile' } : s >= 0.5 ? 'smile' : 'no_smile';
  },
  age: (a) => {
    if (a.age == null) return undefined;
    const age = num(a.age);
    if (age === undefined || age < 0) return { bad: 'age' };
    const lo = Math.floor(age / 10) * 10;
    return `${lo}-${lo + 9}`;
  },
  emotion: (a) => (a.emotion == null ? undefined : (argmax(a.emotion) ?? { bad: 'emotion' })),
  eye_occluded: (a) => {
    const v = field(a.occlusion, 'eyeOccluded');
    if (v == null) return undefined;
    return typeof v === 'boolean' ? (v ? 'occluded' : 'visible') : { bad: 'occlusion.eyeOccluded' };
  },
};

function checkFaceTarget(target: string): void {
  if (!Object.hasOwn(FACE_TARGETS, target)) {
    throw new Error(`unknown Face-API label target "${target}"; supported: ${Object.keys(FACE_TARGETS).join(', ')}`);
  }
}

// The scalar fields worth keeping next to the label (for filtering and for balance reports), flattened.
function faceAttributes(a: Json, faces: number): Record<string, AttributeValue> {
  const pose = a.headPose;
  const candidates: Record<string, unknown> = {
    age: num(a.age),
    gender: a.gender,
    smile: num(a.smile),
    glasses: a.glasses,
    head_pitch: num(field(pose, 'pitch')),
    head_roll: num(field(pose, 'roll')),
    head_yaw: num(field(pose, 'yaw')),
    emotion: argmax(a.emotion),
    blur: num(field(a.blur, 'value')),
    exposure: num(field(a.exposure, 'value')),
    noise: num(field(a.noise, 'value')),
    eye_occluded: field(a.occlusion, 'eyeOccluded'),
    bald: num(field(a.hair, 'bald')),
    faces, // more than one face means the label may belong to someone else in the picture
  };
  const out: Record<string, AttributeValue> = {};
  for (const [k, v] of Object.entries(candidates)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
  }
  return out;
}

export interface FaceApiResult {
  row?: LabelRow;
  reason?: 'noFace' | 'malformed' | 'missingTarget';
  problem?: string;
}

export function readFaceApiJson(id: string, text: string, target = 'gender'): FaceApiResult {
  checkFaceTarget(target);
  const rowId = toId(id) ?? id; // file names are already 5 digits; keep anything else as given
  let faces: unknown;
  try {
    faces = JSON.parse(text);
  } catch (e) {
    return { reason: 'malformed', problem: `${rowId}: invalid JSON (${(e as Error).message})` };
  }
  if (!Array.isArray(faces)) return { reason: 'malformed', problem: `${rowId}: expected a JSON array of faces` };
  if (faces.length === 0) return { reason: 'noFace' };
  // The API lists faces largest first; FFHQ crops are centred on one face, so the first is the subject.
  const attrs = field(faces[0], 'faceAttributes');
  if (!isObject(attrs)) return { reason: 'malformed', problem: `${rowId}: first face has no faceAttributes object` };
  const label = FACE_TARGETS[target](attrs);
  if (label === undefined) return { reason: 'missingTarget', problem: `${rowId}: face has no ${target}` };
  if (typeof label !== 'string') return { reason: 'malformed', problem: `${rowId}: ${label.bad} has the wrong type` };
  return { row: { id: rowId, label, attributes: faceAttributes(attrs, faces.length) } };
}

export function collectFaceApi(entries: Array<{ id: string; text: string }>, target = 'gender'): LabelTable {
  checkFaceTarget(target); // also when there are no entries: a typo must not pass as "0 rows"
  const table = new TableBuilder(target);
  for (const { id, text } of entries) {
    const result = readFaceApiJson(id, text, target);
    if (result.reason) table.excluded[result.reason]++;
    if (result.problem) table.problem(result.problem);
    if (result.row) table.add(result.row, id);
  }
  return table.build();
}
