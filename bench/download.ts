// Benchmark (on demand: `npm run bench:download`): downloading many small files from a loopback HTTP
// server, as a ratio to curl fetching the same files with the same concurrency (`xargs -P`), goal
// >= 0.9; and a download killed at 50% then resumed, goal: <= 55% of the bytes fetched again.
// Options: --files N (5000), --size BYTES (20000), --jobs J (8).

import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { fetchFile } from '../stages/download/fetch-file.ts';
import { fetchMany } from '../stages/download/fetch-many.ts';
import { time } from './timing.ts';

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: '5000' },
    size: { type: 'string', default: '20000' },
    jobs: { type: 'string', default: '8' },
  },
});
const FILES = Number(values.files);
const SIZE = Number(values.size);
const JOBS = Number(values.jobs);

const bodies = Array.from({ length: FILES }, (_, i) => Buffer.alloc(SIZE, i % 251));
const BIG = 64 * 1024 * 1024;

// The server runs in its own process, so the client measured here does not share a core with it
// (curl does not either).
const serverCode = `
const http = require('node:http');
const SIZE = ${SIZE}, FILES = ${FILES}, BIG = Buffer.alloc(${BIG}, 7);
let served = 0;
http.createServer((req, res) => {
  if (req.url === '/served') return res.end(String(served));
  if (req.url === '/reset-count') { served = 0; return res.end('0'); }
  if (req.url === '/big.bin') {
    const m = /bytes=(\\d+)-/.exec(req.headers.range || '');
    const from = m ? Number(m[1]) : 0;
    res.writeHead(from ? 206 : 200, { 'content-length': BIG.length - from });
    served += BIG.length - from;
    return res.end(BIG.subarray(from));
  }
  const i = Number(req.url.slice(1).split('.')[0]);
  if (!(i >= 0 && i < FILES)) { res.writeHead(404); return res.end(); }
  res.writeHead(200, { 'content-length': SIZE, 'content-type': 'image/png' });
  res.end(Buffer.alloc(SIZE, i % 251));
}).listen(0, '127.0.0.1', function () { console.log(this.address().port); });
`;
const server = execa(process.execPath, ['-e', serverCode], { reject: false });
const port = await new Promise<number>((resolve) =>
  server.stdout?.once('data', (d: Buffer) => resolve(Number(String(d).trim()))),
);
const base = `http://127.0.0.1:${port}`;
const served = async () => Number(await (await fetch(`${base}/served`)).text());
const work = mkdtempSync(path.join(tmpdir(), 'pipeline-bench-dl-'));
const note = (k: string, v: string) => console.log(`${k.padEnd(40)} ${v}`);

try {
  note('files', `${FILES} x ${SIZE} B over loopback, ${JOBS} at once`);
  // curl: the same URLs, the same concurrency. This disk's speed drifts within minutes, so the two are
  // timed in alternating rounds, each from a flushed disk, and the ratio is the median of the rounds'.
  const list = path.join(work, 'urls.txt');
  writeFileSync(list, bodies.map((_, i) => `${base}/${i}.png`).join('\n'));
  const curlDir = path.join(work, 'curl');
  const ours = path.join(work, 'ours');
  const ratios: number[] = [];
  const md5Ratios: number[] = [];
  const md5s = bodies.map((b) => createHash('md5').update(b).digest('hex'));
  const items = (dir: string, md5: boolean) =>
    bodies.map((b, i) => ({
      url: `${base}/${i}.png`,
      dest: path.join(dir, `${i}.png`),
      size: b.length,
      md5: md5 ? md5s[i] : undefined,
    }));
  const ROUNDS = 5;
  for (let round = 0; round < ROUNDS; round++) {
    rmSync(curlDir, { recursive: true, force: true });
    rmSync(ours, { recursive: true, force: true });
    mkdirSync(curlDir);
    await execa('sync');
    const curl = await time(() =>
      execa('sh', ['-c', `xargs -P ${JOBS} -n 50 curl -s --remote-name-all < ${list}`], { cwd: curlDir }),
    );
    await execa('sync');
    const fetched = await time(() => fetchMany(items(ours, false), { jobs: JOBS }));
    rmSync(ours, { recursive: true, force: true });
    await execa('sync');
    // As the FFHQ source fetches: every file's md5 checked too (curl checks nothing).
    const withMd5 = await time(() => fetchMany(items(ours, true), { jobs: JOBS }));
    ratios.push(curl / fetched);
    md5Ratios.push(curl / withMd5);
    note(
      `round ${round + 1}`,
      `curl ${curl.toFixed(3)} s, fetchMany (size-checked, atomic) ${fetched.toFixed(3)} s: ${(curl / fetched).toFixed(2)}x, + md5 ${withMd5.toFixed(3)} s: ${(curl / withMd5).toFixed(2)}x`,
    );
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  note('throughput vs curl (median of rounds)', `${median(ratios).toFixed(2)}x (goal >= 0.9)`);
  note('  with every md5 checked as well', `${median(md5Ratios).toFixed(2)}x`);

  // Killed at 50%, then resumed.
  const dest = path.join(work, 'big.bin');
  const controller = new AbortController();
  let got = 0;
  const half = BIG / 2;
  await fetchFile(`${base}/big.bin`, dest, {
    signal: controller.signal,
    onBytes: (n) => {
      got += n;
      if (got >= half) controller.abort(new Error('killed'));
    },
  }).catch(() => undefined);
  const before = await served();
  await fetchFile(`${base}/big.bin`, dest, { size: BIG });
  const again = (await served()) - before;
  note('resume after a kill at 50%', `${((again / BIG) * 100).toFixed(1)}% of the bytes fetched again (goal <= 55%)`);
} finally {
  server.kill();
  rmSync(work, { recursive: true, force: true });
}
