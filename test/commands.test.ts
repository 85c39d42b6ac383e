// The commands' surfaces: targets, --downstream, --dry-run, --force, --json, dag in three formats,
// folder and glob deps, and the `pipeline` bin.

import assert from 'node:assert/strict';
import { renameSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { chainProject, countingStage, type Project, pipelineFile, REPO } from './rig.ts';

describe('commands', () => {
  let p: Project;
  before(() => {
    p = chainProject();
  });
  after(() => p.remove());

  test('dag: ASCII layers, Mermaid, dot, JSON', async () => {
    const ascii = await p.cli('dag');
    assert.equal(ascii.exitCode, 0);
    assert.match(
      ascii.stdout,
      /layer 0\n {2}prepare\s*\nlayer 1\n {2}train\s+◀── prepare\nlayer 2\n {2}evaluate\s+◀── train, prepare/,
    );
    const mermaid = await p.cli('dag', '--mermaid');
    assert.match(mermaid.stdout, /^flowchart TD\n/);
    assert.match(mermaid.stdout, /prepare --> train\n/);
    assert.match(mermaid.stdout, /train --> evaluate/);
    const dot = await p.cli('dag', '--dot');
    assert.match(dot.stdout, /^digraph pipeline \{/);
    assert.match(dot.stdout, /"prepare" -> "evaluate";/);
    const json = JSON.parse((await p.cli('dag', '--json')).stdout);
    assert.deepEqual(json.stages[2].upstream, ['train', 'prepare']);
  });

  test('--dry-run prints the plan and why, and runs nothing', async () => {
    const r = await p.cli('run', '--dry-run');
    assert.equal(r.exitCode, 0);
    assert.match(r.stdout, /would run prepare: never run/);
    assert.match(r.stdout, /would run evaluate: never run; upstream stale: train; upstream stale: prepare/);
    assert.deepEqual(p.runs(), []);
    assert.ok(!p.exists('pipeline.lock'));
  });

  test('a target runs with what it needs, not what needs it', async () => {
    const r = await p.cli('run', 'train');
    assert.equal(r.exitCode, 0);
    assert.deepEqual(p.runs(), ['prepare', 'train']);
    const s = await p.statusJson('evaluate');
    assert.deepEqual(
      s.stages.map((x) => x.name),
      ['prepare', 'train', 'evaluate'],
    );
    assert.equal(s.stages[2].state, 'never-run');
    assert.deepEqual(s.stages[2].reasons, [{ kind: 'never-run' }]);
  });

  test('--json run prints one event per line, ending with the summary', async () => {
    const r = await p.cli('run', '--json');
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      events.map((e) => e.type),
      ['stage-fresh', 'stage-fresh', 'stage-start', 'stage-success', 'run-summary'],
    );
    assert.deepEqual(events[2].reasons, [{ kind: 'never-run' }]);
    assert.deepEqual(
      events[4].stages.map((s: { outcome: string }) => s.outcome),
      ['fresh', 'fresh', 'ran'],
    );
    p.runs();
  });

  test('--force reruns fresh targets; --downstream takes what reads them', async () => {
    await p.cli('run', 'train', '--force');
    assert.deepEqual(p.runs(), ['prepare', 'train']);
    // train's out is unchanged, so its downstream is fresh; --downstream --force reruns it anyway.
    await p.cli('run', 'train', '--downstream', '--force');
    assert.deepEqual(p.runs(), ['evaluate', 'train']);
    p.write('data/raw.txt', 'changed\n');
    // --downstream of train does not include prepare, whose dep changed.
    await p.cli('run', 'train', '--downstream');
    assert.deepEqual(p.runs(), []);
    await p.cli('run', 'prepare', '--downstream');
    assert.deepEqual(p.runs(), ['evaluate', 'prepare', 'train']);
  });

  test('the status --json shape is exactly the documented one', async () => {
    p.write('configs/default.yaml', p.read('configs/default.yaml').replace('lr: 0.001', 'lr: 0.002'));
    const r = await p.cli('status', '--json', 'train');
    assert.deepEqual(JSON.parse(r.stdout), {
      stages: [
        { name: 'prepare', state: 'fresh', reasons: [] },
        {
          name: 'train',
          state: 'stale',
          reasons: [{ kind: 'param', path: 'train.lr', change: 'modified', old: 0.001, new: 0.002 }],
        },
      ],
    });
  });

  test('the pipeline bin (npx pipeline) runs the same CLI on ./pipeline.ts', async () => {
    const bin = path.join(REPO, 'bin', 'pipeline.js');
    const r = await execa(process.execPath, [bin, 'status'], { cwd: p.dir, reject: false });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /train\s+stale\n\s+changed param: train\.lr \(0\.001 -> 0\.002\)/);
    // From a subfolder it finds the project's pipeline.ts above, as git finds its root.
    const sub = await execa(process.execPath, [bin, 'status', 'train'], { cwd: p.path('stages'), reject: false });
    assert.equal(sub.exitCode, 0, sub.stderr);
    assert.match(sub.stdout, /train\s+stale/);
    const none = await execa(process.execPath, [bin, 'status'], { cwd: '/', reject: false });
    assert.equal(none.exitCode, 2);
    assert.match(none.stderr, /no pipeline\.ts here/);
  });
});

describe('folder and glob deps', () => {
  let p: Project;
  before(async () => {
    p = chainProject();
    p.write('data/images/a.png', 'A');
    p.write('data/images/sub/b.png', 'B');
    p.write('data/labels/1.json', '{}');
    p.write('data/labels/2.json', '{}');
    p.write('data/labels/readme.txt', 'not a label');
    p.write(
      'stages/embed.ts',
      countingStage('embed', {
        deps: ['data/images'],
        outs: ['artifacts/embeddings'],
        body: "(await import('node:fs')).mkdirSync(ctx.outs[0], { recursive: true }); writeFileSync(ctx.outs[0] + '/all.txt', input);",
      }),
    );
    p.write(
      'stages/labels.ts',
      countingStage('labels', { deps: ['data/labels/*.json'], outs: ['artifacts/labels.txt'] }),
    );
    p.write(
      'stages/join.ts',
      countingStage('join', {
        deps: ['artifacts/embeddings/all.txt', 'artifacts/labels.txt'],
        outs: ['artifacts/joined.txt'],
      }),
    );
    p.write('pipeline.ts', pipelineFile(['embed', 'labels', 'join']));
    assert.equal((await p.cli('run')).exitCode, 0);
    assert.deepEqual(p.runs(), ['embed', 'join', 'labels']);
  });
  after(() => p.remove());

  test('a file inside a folder out is a dep on the stage that writes the folder', async () => {
    const dag = JSON.parse((await p.cli('dag', '--json')).stdout);
    assert.deepEqual(dag.stages.find((s: { name: string }) => s.name === 'join').upstream, ['embed', 'labels']);
  });

  test('adding, renaming and editing a file in a folder dep', async () => {
    p.write('data/images/c.png', 'C');
    let s = await p.statusJson();
    assert.deepEqual(s.stages[0].reasons, [
      {
        kind: 'dep',
        path: 'data/images',
        change: 'modified',
        files: { added: 1, removed: 0, modified: 0, examples: ['c.png'] },
      },
    ]);
    assert.match((await p.cli('status')).stdout, /changed dep: data\/images \(1 added: c\.png\)/);
    await p.cli('run');
    assert.deepEqual(p.runs(), ['embed', 'join']);
    renameSync(p.path('data/images/sub/b.png'), p.path('data/images/sub/d.png'));
    s = await p.statusJson();
    assert.equal(s.stages[0].state, 'stale', 'a rename changes the folder hash');
    assert.match(
      (await p.cli('status')).stdout,
      /changed dep: data\/images \(1 added, 1 removed: sub\/d\.png, sub\/b\.png\)/,
    );
    await p.cli('run');
    p.runs();
    p.write('data/images/a.png', 'A2');
    s = await p.statusJson();
    assert.equal(s.stages[0].state, 'stale');
    await p.cli('run');
    // embed lists file names only, so its out is unchanged by an edit: join is not rerun.
    assert.deepEqual(p.runs(), ['embed']);
  });

  test('a glob dep sees new matches and ignores non-matches', async () => {
    p.write('data/labels/notes.md', 'ignored');
    assert.equal((await p.statusJson()).stages[1].state, 'fresh');
    p.write('data/labels/3.json', '{}');
    const s = await p.statusJson();
    assert.deepEqual(s.stages[1].reasons, [
      {
        kind: 'dep',
        path: 'data/labels/*.json',
        change: 'modified',
        files: { added: 1, removed: 0, modified: 0, examples: ['data/labels/3.json'] },
      },
    ]);
    await p.cli('run');
    assert.deepEqual(p.runs(), ['join', 'labels']);
    p.write('data/labels/1.json', '{"edited": true}');
    assert.equal((await p.statusJson()).stages[1].state, 'stale', 'an edit to a matched file is seen');
  });
});
