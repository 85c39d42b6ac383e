// Disk full while restoring: the project lives on a small tmpfs (mounted by the test; CI runs as root),
// so restoring an out runs out of space midway. The workspace must be left exactly as it was.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { fetchFile } from '../stages/download/fetch-file.ts';
import { ENGINE, Project } from './rig.ts';

const MOUNT = mkdtempSync(path.join(tmpdir(), 'pipeline-tmpfs-'));

describe('disk full while restoring', () => {
  let mounted = false;
  before(async () => {
    const r = await execa('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', MOUNT], { reject: false });
    mounted = r.exitCode === 0;
  });
  after(async () => {
    if (mounted) await execa('umount', [MOUNT], { reject: false });
    rmSync(MOUNT, { recursive: true, force: true });
  });

  test('checkout that hits ENOSPC leaves the workspace as it was and says why', async (t) => {
    if (!mounted) {
      t.skip('cannot mount a tmpfs here (needs root)');
      return;
    }
    const p = new Project(MOUNT);
    p.write('package.json', JSON.stringify({ type: 'module' }));
    p.write('data/seed.txt', 'v1');
    p.write(
      'pipeline.ts',
      `import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { definePipeline, runIfMain, stage } from ${JSON.stringify(ENGINE)};
// Two 1 MB files whose bytes depend on the seed.
const make = stage('make', {
  deps: ['data/seed.txt'], outs: ['artifacts/big'],
  run(ctx) {
    const seed = readFileSync(ctx.deps[0], 'utf8');
    mkdirSync(ctx.outs[0], { recursive: true });
    for (const n of ['a', 'b']) writeFileSync(ctx.outs[0] + '/' + n, Buffer.alloc(1 << 20, seed + n));
  },
});
const pipeline = definePipeline([make]);
export default pipeline;
await runIfMain(import.meta.url, pipeline);
`,
    );
    assert.equal((await p.cli('run')).exitCode, 0);
    // 2 MB in the workspace + 2 MB in the cache. Now the user's own edit fills most of what is left.
    p.write('artifacts/big/a', 'x'.repeat(1 << 20));
    p.write('artifacts/big/b', 'y'.repeat(1 << 20));
    p.write('artifacts/big/c', 'z'.repeat(1 << 20));
    const before = readdirSync(p.path('artifacts/big')).map((f) => [f, p.read(`artifacts/big/${f}`).length]);

    const r = await p.cli('checkout');
    assert.equal(r.exitCode, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /cannot restore artifacts\/big: ENOSPC/);
    // Exactly the user's files, untouched, and no half-built restore left beside them.
    const after = readdirSync(p.path('artifacts/big')).map((f) => [f, p.read(`artifacts/big/${f}`).length]);
    assert.deepEqual(after, before);
    assert.equal(p.read('artifacts/big/c')[0], 'z');
    assert.deepEqual(readdirSync(p.path('artifacts')), ['big']);
  });

  test('a download that hits ENOSPC fails naming the file, and no unverified file appears', async (t) => {
    if (!mounted) {
      t.skip('cannot mount a tmpfs here (needs root)');
      return;
    }
    const big = Buffer.alloc(8 * 1024 * 1024, 3);
    const server = createServer((_req, res) => res.writeHead(200, { 'content-length': big.length }).end(big));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/big.bin`;
      const dest = path.join(MOUNT, 'downloads', 'big.bin');
      await assert.rejects(
        fetchFile(url, dest, { size: big.length, attempts: 2, backoffMs: 10 }),
        /big\.bin failed after 2 attempts: .*ENOSPC/,
      );
      assert.ok(!existsSync(dest), 'nothing unverified under the final name');
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
