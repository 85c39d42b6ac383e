// Config loading on real files: extends, --set typing, nearest-key suggestions, param patterns.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig, resolveParams } from '../engine/config.ts';
import { PipelineError } from '../engine/failure.ts';

const root = mkdtempSync(path.join(tmpdir(), 'pipeline-config-'));
mkdirSync(path.join(root, 'configs'));
const write = (name: string, text: string) => writeFileSync(path.join(root, 'configs', `${name}.yaml`), text);
write('default', 'train:\n  lr: 0.001\n  hidden: [384, 256]\n  activation: relu\ndata:\n  count: 100\n');
write('small', 'extends: default\ndata:\n  count: 10\n');
write('typo', 'extends: default\ntrain:\n  lrr: 0.1\n');
write('loop_a', 'extends: loop_b\n');
write('loop_b', 'extends: loop_a\n');

const failure = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    if (e instanceof PipelineError) return e;
    throw e;
  }
  assert.fail('expected a PipelineError');
};

describe('config', () => {
  after(() => rmSync(root, { recursive: true, force: true }));

  test('extends merges over the base, keeping what it does not override', () => {
    const c = loadConfig(root, 'small');
    assert.deepEqual(c.tree, { train: { lr: 0.001, hidden: [384, 256], activation: 'relu' }, data: { count: 10 } });
    assert.deepEqual(
      c.files.map((f) => path.basename(f)),
      ['default.yaml', 'small.yaml'],
    );
  });

  test('a key the base does not define is an error with the nearest key', () => {
    const e = failure(() => loadConfig(root, 'typo'));
    assert.match(
      e.message,
      /unknown config key 'train\.lrr' \(in configs\/typo\.yaml, not defined by its base 'default'\)\. Did you mean 'train\.lr'\?/,
    );
  });

  test('an extends loop is an error', () => {
    assert.match(failure(() => loadConfig(root, 'loop_a')).message, /extends' loops: loop_a -> loop_b -> loop_a/);
  });

  test('--set values are YAML: numbers, lists, strings, booleans; +key adds', () => {
    const c = loadConfig(root, 'default', [
      'train.lr=5e-4',
      'train.hidden=[64, 32]',
      'train.activation=gelu',
      '+train.bn=true',
    ]);
    assert.deepEqual(c.tree.train, { lr: 5e-4, hidden: [64, 32], activation: 'gelu', bn: true });
  });

  test('--set of a group with a scalar is refused', () => {
    assert.match(
      failure(() => loadConfig(root, 'default', ['train=1'])).message,
      /'train' is a group of keys, not a value/,
    );
  });

  test('param patterns: exact keys and subtrees, each leaf tracked on its own', () => {
    const c = loadConfig(root, 'default');
    assert.deepEqual(
      [...resolveParams(c.tree, ['train.*'], 's').keys()],
      ['train.activation', 'train.hidden', 'train.lr'],
    );
    assert.deepEqual([...resolveParams(c.tree, ['data.count'], 's')], [['data.count', 100]]);
    assert.match(failure(() => resolveParams(c.tree, ['data.cuont'], 's')).message, /Did you mean 'data\.count'/);
  });
});
