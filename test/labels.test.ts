// Label readers: the real Face-API sample (read in place, never copied: FFHQ license), generated Face-API
// fixtures for every target and failure, and an inline FFHQ-Aging CSV.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { collectFaceApi, readAgingCsv, readFaceApiJson } from '../stages/download/labels.ts';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SAMPLE_DIR = path.resolve(REPO_ROOT, '..', 'shared', 'data', 'ffhq-features-sample', 'json');

// One Face-API face in the real file's shape; `over` replaces faceAttributes fields (undefined removes one).
function face(over: Record<string, unknown> = {}): string {
  const attributes: Record<string, unknown> = {
    smile: 0.2,
    headPose: { pitch: -2.3, roll: 0.1, yaw: 28.4 },
    gender: 'female',
    age: 31.0,
    glasses: 'NoGlasses',
    emotion: { anger: 0.01, happiness: 0.2, neutral: 0.79 },
    blur: { blurLevel: 'low', value: 0.1 },
    exposure: { exposureLevel: 'goodExposure', value: 0.6 },
    noise: { noiseLevel: 'low', value: 0.05 },
    occlusion: { foreheadOccluded: false, eyeOccluded: false, mouthOccluded: false },
    hair: { bald: 0.02, invisible: false, hairColor: [] },
  };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete attributes[k];
    else attributes[k] = v;
  }
  return JSON.stringify([
    { faceId: 'x', faceRectangle: { top: 1, left: 1, width: 9, height: 9 }, faceAttributes: attributes },
  ]);
}

describe('Face-API labels: the real sample', () => {
  const files = readdirSync(SAMPLE_DIR).filter((f) => f.endsWith('.json'));
  const entries = files.map((f) => ({
    id: path.basename(f, '.json'),
    text: readFileSync(path.join(SAMPLE_DIR, f), 'utf8'),
  }));
  const table = collectFaceApi(entries, 'gender');

  test('23 files: 20 faces and 3 empty lists', () => {
    assert.equal(files.length, 23);
    assert.equal(table.rows.length, 20);
    assert.deepEqual(table.excluded, { noFace: 3, malformed: 0, lowConfidence: 0, missingTarget: 0 });
    assert.deepEqual(table.problems, []);
  });

  test('ids are the file names, sorted, without the no-face ones', () => {
    const expected = files
      .map((f) => path.basename(f, '.json'))
      .filter((id) => !['00036', '00121', '00434'].includes(id))
      .sort();
    assert.deepEqual(
      table.rows.map((r) => r.id),
      expected,
    );
  });

  test('every label is male or female, and exact values match the files', () => {
    for (const row of table.rows) assert.ok(['male', 'female'].includes(row.label), `${row.id}: ${row.label}`);
    const byId = new Map(table.rows.map((r) => [r.id, r]));
    const r1000 = byId.get('01000')!;
    assert.equal(r1000.label, 'male');
    assert.equal(r1000.attributes.age, 49);
    assert.equal(r1000.attributes.head_yaw, 28.4);
    assert.equal(r1000.attributes.emotion, 'neutral');
    assert.equal(r1000.attributes.blur, 0.7);
    assert.equal(r1000.attributes.eye_occluded, false);
    const r1006 = byId.get('01006')!;
    assert.equal(r1006.label, 'female');
    assert.equal(r1006.attributes.age, 4);
    assert.equal(r1006.attributes.bald, 0);
    assert.equal(byId.get('01009')!.attributes.glasses, 'ReadingGlasses');
  });

  test('the same files under other targets', () => {
    const age = collectFaceApi(entries, 'age');
    const byId = new Map(age.rows.map((r) => [r.id, r.label]));
    assert.equal(byId.get('01000'), '40-49');
    assert.equal(byId.get('01006'), '0-9');
    const glasses = collectFaceApi(entries, 'glasses');
    assert.equal(glasses.rows.filter((r) => r.label === 'ReadingGlasses').length, 4); // 01009, 01010, 01014, 01018
  });
});

describe('Face-API labels: generated fixtures', () => {
  test('each supported target', () => {
    const label = (target: string, over: Record<string, unknown> = {}) =>
      readFaceApiJson('00007', face(over), target).row?.label;
    assert.equal(label('gender'), 'female');
    assert.equal(label('glasses', { glasses: 'Sunglasses' }), 'Sunglasses');
    assert.equal(label('smile', { smile: 0.5 }), 'smile');
    assert.equal(label('smile', { smile: 0.499 }), 'no_smile');
    assert.equal(label('age', { age: 29.9 }), '20-29');
    assert.equal(label('age', { age: 30 }), '30-39');
    assert.equal(label('emotion', { emotion: { anger: 0.1, happiness: 0.7, neutral: 0.2 } }), 'happiness');
    assert.equal(label('eye_occluded', { occlusion: { eyeOccluded: true } }), 'occluded');
    assert.equal(label('eye_occluded'), 'visible');
  });

  test('attributes are flattened scalars', () => {
    const { row } = readFaceApiJson('7', face(), 'gender');
    assert.deepEqual(row, {
      id: '00007',
      label: 'female',
      attributes: {
        age: 31,
        gender: 'female',
        smile: 0.2,
        glasses: 'NoGlasses',
        head_pitch: -2.3,
        head_roll: 0.1,
        head_yaw: 28.4,
        emotion: 'neutral',
        blur: 0.1,
        exposure: 0.6,
        noise: 0.05,
        eye_occluded: false,
        bald: 0.02,
        faces: 1,
      },
    });
  });

  test('no face, malformed and missing target', () => {
    assert.deepEqual(readFaceApiJson('00001', '[]', 'gender'), { reason: 'noFace' });
    const bad = readFaceApiJson('00002', '[{"faceAttributes":', 'gender');
    assert.equal(bad.reason, 'malformed');
    assert.match(bad.problem!, /00002.*invalid JSON/);
    assert.equal(readFaceApiJson('00003', '{"faces":[]}', 'gender').reason, 'malformed');
    assert.equal(readFaceApiJson('00004', '[{"faceId":"x"}]', 'gender').reason, 'malformed');
    assert.equal(readFaceApiJson('00005', face({ smile: 'big' }), 'smile').reason, 'malformed');
    const missing = readFaceApiJson('00006', face({ gender: undefined }), 'gender');
    assert.equal(missing.reason, 'missingTarget');
    assert.match(missing.problem!, /00006.*gender/);
  });

  test('collectFaceApi counts each reason and sorts by id', () => {
    const table = collectFaceApi(
      [
        { id: '00009', text: face({ smile: 0.9 }) },
        { id: '00001', text: '[]' },
        { id: '00003', text: 'not json' },
        { id: '00002', text: face({ smile: undefined }) },
        { id: '00004', text: face({ smile: 0.1 }) },
      ],
      'smile',
    );
    assert.deepEqual(
      table.rows.map((r) => [r.id, r.label]),
      [
        ['00004', 'no_smile'],
        ['00009', 'smile'],
      ],
    );
    assert.deepEqual(table.excluded, { noFace: 1, malformed: 1, lowConfidence: 0, missingTarget: 1 });
    assert.equal(table.problems.length, 2);
  });

  test('an unknown target throws, listing the supported ones', () => {
    assert.throws(() => readFaceApiJson('00001', face(), 'blink'), /"blink".*gender, glasses, smile, age, emotion/);
    assert.throws(() => collectFaceApi([], 'blink'), /blink/);
  });
});

describe('FFHQ-Aging CSV labels', () => {
  const HEADER =
    'image_number,age_group,age_group_confidence,gender,gender_confidence,head_pitch,head_roll,head_yaw,' +
    'left_eye_occluded,right_eye_occluded,glasses';
  const CSV = [
    HEADER,
    '42,20-29,0.95,female,0.99,-1.5,0.3,12.25,0.01,0.02,None', // line 2
    '00007,0-2,0.62,male,0.7,2.0,-0.1,-5.5,True,False,Normal', // line 3
    'abc,3-6,0.9,male,0.9,0,0,0,0,0,None', // line 4: bad image_number
    '8,,0.9,male,0.9,0,0,0,0,0,None', // line 5: no age_group
    '9,70-120,0.5,female,0.95,0,0,0,0,0,Dark', // line 6: low age_group confidence
    '10,10-14,oops,female,0.95,0,0,0,0,0,None', // line 7: confidence not a number
    '',
  ].join('\n');

  test('normal rows: ids padded, typed attributes, sorted', () => {
    const table = readAgingCsv(CSV, {});
    assert.equal(table.target, 'age_group');
    assert.deepEqual(
      table.rows.map((r) => [r.id, r.label]),
      [
        ['00007', '0-2'],
        ['00009', '70-120'],
        ['00042', '20-29'],
      ],
    );
    assert.deepEqual(table.rows[2].attributes, {
      age_group: '20-29',
      age_group_confidence: 0.95,
      gender: 'female',
      gender_confidence: 0.99,
      head_pitch: -1.5,
      head_roll: 0.3,
      head_yaw: 12.25,
      left_eye_occluded: 0.01,
      right_eye_occluded: 0.02,
      glasses: 'None',
    });
    assert.equal(table.rows[0].attributes.left_eye_occluded, true);
    assert.equal(table.rows[0].attributes.right_eye_occluded, false);
    assert.deepEqual(table.excluded, { noFace: 0, malformed: 3, lowConfidence: 0, missingTarget: 0 });
    assert.equal(table.problems.length, 3);
    assert.match(table.problems[0], /^line 4: .*abc/);
    assert.match(table.problems[1], /^line 5: .*age_group/);
    assert.match(table.problems[2], /^line 7: age_group_confidence .* is not a number/);
  });

  test('minConfidence excludes low-confidence rows', () => {
    const table = readAgingCsv(CSV, { minConfidence: 0.8 });
    assert.deepEqual(
      table.rows.map((r) => r.id),
      ['00042'],
    );
    assert.equal(table.excluded.lowConfidence, 2); // 00007 (0.62) and 00009 (0.5)
    assert.equal(table.excluded.malformed, 3);
  });

  test('target gender uses gender and gender_confidence', () => {
    const table = readAgingCsv(CSV, { target: 'gender', minConfidence: 0.8 });
    assert.deepEqual(
      table.rows.map((r) => [r.id, r.label]),
      [
        ['00008', 'male'], // no age_group does not matter when the target is gender
        ['00009', 'female'],
        ['00010', 'female'],
        ['00042', 'female'],
      ],
    );
    assert.equal(table.excluded.lowConfidence, 1); // 00007 (0.7)
    assert.equal(table.excluded.malformed, 1); // abc
  });

  test('a target that is not a column throws, naming it and the columns', () => {
    assert.throws(() => readAgingCsv(CSV, { target: 'emotion' }), /"emotion".*image_number, age_group/);
    const noAgeGroup = 'image_number,gender\n1,male\n';
    assert.throws(() => readAgingCsv(noAgeGroup, {}), /"age_group".*image_number, gender/);
  });

  test('a header-only CSV gives an empty table', () => {
    const table = readAgingCsv(`${HEADER}\n`, {});
    assert.deepEqual(table.rows, []);
    assert.deepEqual(table.excluded, { noFace: 0, malformed: 0, lowConfidence: 0, missingTarget: 0 });
  });
});
