// Every bad input gets a clear error naming what is wrong, exit code 2, and changes nothing.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { chainProject, countingStage, ENGINE, type Project, pipelineFile } from './rig.ts';

/** Run `args`, expect exit 2 with `message` on stderr, and no change to the lock or the outs. */
async function expectRejected(p: Project, args: string[], message: RegExp): Promise<void> {
  const lockBefore = p.exists('pipeline.lock') ? p.read('pipeline.lock') : undefined;
  const r = await p.cli(...args);
  assert.equal(r.exitCode, 2, `expected exit 2, got ${r.exitCode}: ${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, message);
  assert.deepEqual(p.runs(), [], 'no stage may run');
  assert.equal(p.exists('pipeline.lock') ? p.read('pipeline.lock') : undefined, lockBefore);
}

describe('bad input', () => {
  let p: Project;
  let goodPipeline: string;
  before(async () => {
    p = chainProject();
    goodPipeline = p.read('pipeline.ts');
    assert.equal((await p.cli('run')).exitCode, 0);
    p.runs();
  });
  after(() => p.remove());

  test('a cycle is printed', async () => {
    p.write(
      'stages/loop.ts',
      countingStage('loop', { deps: ['artifacts/metrics.json'], outs: ['artifacts/loop.txt'] }),
    );
    p.write('stages/prepare2.ts', p.read('stages/prepare.ts'));
    // prepare now also reads loop's out: prepare -> train -> evaluate -> loop -> prepare.
    p.write(
      'stages/prepare.ts',
      p.read('stages/prepare.ts').replace('deps: ["data/raw.txt"]', 'deps: ["data/raw.txt","artifacts/loop.txt"]'),
    );
    p.write('pipeline.ts', pipelineFile(['prepare', 'train', 'evaluate', 'loop']));
    await expectRejected(p, ['run'], /cycle: (\w+ -> ){4}\w+/);
    await expectRejected(p, ['status'], /cycle: .*prepare -> train -> evaluate -> loop -> prepare/);
    p.write('stages/prepare.ts', p.read('stages/prepare2.ts'));
    p.write('pipeline.ts', goodPipeline);
  });

  test('two stages writing the same out', async () => {
    p.write('stages/dup.ts', countingStage('dup', { deps: ['data/raw.txt'], outs: ['artifacts/model.txt'] }));
    p.write('pipeline.ts', pipelineFile(['prepare', 'train', 'evaluate', 'dup']));
    await expectRejected(p, ['run'], /'artifacts\/model\.txt' is an out of more than one stage \(train, dup\)/);
    p.write('pipeline.ts', goodPipeline);
  });

  test('a dep that no stage makes and that does not exist', async () => {
    p.write('stages/orphan.ts', countingStage('orphan', { deps: ['data/nope.csv'], outs: ['artifacts/o.txt'] }));
    p.write('pipeline.ts', pipelineFile(['prepare', 'train', 'evaluate', 'orphan']));
    await expectRejected(
      p,
      ['run'],
      /stage 'orphan' depends on 'data\/nope\.csv', which does not exist and which no stage makes/,
    );
    p.write('pipeline.ts', goodPipeline);
  });

  test('an out outside the project', async () => {
    p.write('stages/escape.ts', countingStage('escape', { deps: ['data/raw.txt'], outs: ['../escaped.txt'] }));
    p.write('pipeline.ts', pipelineFile(['prepare', 'train', 'evaluate', 'escape']));
    await expectRejected(p, ['run'], /out '\.\.\/escaped\.txt', which is outside the project/);
    p.write('pipeline.ts', goodPipeline);
  });

  test('an unknown stage name, with a suggestion', async () => {
    await expectRejected(p, ['run', 'trian'], /no stage is named 'trian'\. Did you mean 'train'\?/);
    await expectRejected(p, ['status', 'trian'], /Did you mean 'train'/);
  });

  test('an unknown --set key, with the nearest key', async () => {
    await expectRejected(
      p,
      ['run', '--set', 'train.lrr=0.1'],
      /unknown config key 'train\.lrr'.*Did you mean 'train\.lr'\?/,
    );
  });

  test('a malformed --set', async () => {
    await expectRejected(p, ['run', '--set', 'train.lr'], /malformed --set 'train\.lr': expected '='/);
    await expectRejected(
      p,
      ['status', '--set', 'train.lr=[1, 2'],
      /malformed --set 'train\.lr=\[1, 2': the value is not valid YAML/,
    );
    await expectRejected(p, ['run', '--set', 'train..lr=1'], /is not a dotted key/);
  });

  test('a stage reading a key the config lacks', async () => {
    p.write('stages/train.ts', p.read('stages/train.ts').replace('params: ["train.*"]', 'params: ["train.epoch"]'));
    await expectRejected(
      p,
      ['run'],
      /unknown config key 'train\.epoch' \(param of stage 'train'\)\. Did you mean 'train\.epochs'\?/,
    );
    p.write('stages/train.ts', p.read('stages/train.ts').replace('params: ["train.epoch"]', 'params: ["train.*"]'));
  });

  test('malformed YAML names the file and line', async () => {
    const good = p.read('configs/default.yaml');
    p.write('configs/default.yaml', 'train:\n  lr: 0.001\n   epochs: 3\n');
    await expectRejected(p, ['run'], /malformed YAML in configs\/default\.yaml:3:\d+/);
    await expectRejected(p, ['status'], /configs\/default\.yaml:3/);
    p.write('configs/default.yaml', good);
  });

  test('an unknown --config-name lists the configs there are', async () => {
    await expectRejected(p, ['run', '--config-name', 'nope'], /no config named 'nope'.*Available: default/);
  });

  test('a pipeline.ts that throws', async () => {
    p.write(
      'pipeline.ts',
      goodPipeline.replace('const pipeline =', 'throw new Error("kaboom in definition");\nconst pipeline ='),
    );
    await expectRejected(p, ['run'], /pipeline definition threw while loading: Error: kaboom in definition/);
    p.write('pipeline.ts', goodPipeline);
  });

  test('a stage with both run and cmd', async () => {
    p.write(
      'pipeline.ts',
      `import { definePipeline, runIfMain, stage } from ${JSON.stringify(ENGINE)};
const both = stage('both', { cmd: 'true', run() {}, outs: ['x'] });
const pipeline = definePipeline([both]);
export default pipeline;
await runIfMain(import.meta.url, pipeline);
`,
    );
    await expectRejected(p, ['run'], /stage 'both' must have exactly one of run .* or cmd/);
    p.write('pipeline.ts', goodPipeline);
  });

  test('usage errors exit 2', async () => {
    await expectRejected(p, ['frobnicate'], /unknown command 'frobnicate'/);
    await expectRejected(p, ['run', '--jobs', 'many'], /--jobs must be a positive integer/);
  });

  test('after all that, the workspace is still fresh', async () => {
    const s = await p.statusJson();
    assert.deepEqual(
      s.stages.map((x) => x.state),
      ['fresh', 'fresh', 'fresh'],
    );
  });
});
