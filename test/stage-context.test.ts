// What a TypeScript stage gets in `ctx` beyond its paths and params: `depFiles`, the content hashes the
// engine computed for a folder or glob dep, so a stage need not read every file again.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { blake3 } from '@napi-rs/blake-hash';
import { ENGINE, Project } from './rig.ts';

const p = Project.create({
  'data/a.txt': 'alpha',
  'data/sub/b.txt': 'beta',
  'notes/x.md': 'x',
  'pipeline.ts': `import { writeFileSync } from 'node:fs';
import { definePipeline, runIfMain, stage } from ${JSON.stringify(ENGINE)};
const list = stage('list', {
  deps: ['data', 'notes/*.md'],
  outs: ['out.json'],
  run(ctx) {
    let notAFolder = '';
    try { ctx.depFiles('pipeline.ts'); } catch (e) { notAFolder = e.message; }
    writeFileSync(ctx.outs[0], JSON.stringify({
      data: [...ctx.depFiles('data')],
      glob: [...ctx.depFiles(ctx.deps[1])],
      notAFolder,
    }));
  },
});
const pipeline = definePipeline([list]);
export default pipeline;
await runIfMain(import.meta.url, pipeline);
`,
});
after(() => p.remove());

test("ctx.depFiles gives a folder or glob dep's files with their BLAKE3 hashes, as the engine hashed them", async () => {
  const r = await p.cli('run');
  assert.equal(r.exitCode, 0, r.stdout + r.stderr);
  const out = JSON.parse(p.read('out.json'));
  const h = (s: string) => blake3(s).toString('hex');
  assert.deepEqual(out.data, [
    ['a.txt', h('alpha')],
    ['sub/b.txt', h('beta')],
  ]);
  assert.deepEqual(out.glob, [['notes/x.md', h('x')]]);
  assert.match(out.notAFolder, /depFiles\('pipeline\.ts'\): not a folder or glob dep of stage 'list'/);
});
