// Benchmark (on demand: `npm run bench`): the engine's overhead on a big folder dep, as ratios against
// baselines measured in the same run on the same files.
//
//   data/ (N files of ~S bytes, in folders of 1000 like FFHQ) -> count -> double -> report
//
// Prints: (a) no-op `status` / no-op `run` vs `find -printf` (goal <= 2.5x); (b) after editing one file,
// how many files were read and which stages ran (goal: 1 file; early cutoff stops the cascade);
// (c) cold hashing throughput vs b3sum on the same files with the same number of cores (goal >= 1.0x).
// Options: --files N (70000), --size BYTES (20000), --dir PATH (/tmp/pipeline-bench), --repeat K (5).

import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { Hasher } from '../engine/hashing.ts';
import { StatCache } from '../engine/stat-cache.ts';
import { ENGINE } from '../test/rig.ts';
import { median as medianOf, time } from './timing.ts';

const median = (fn: () => Promise<unknown>, n = REPEAT) => medianOf(fn, n);

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: '70000' },
    size: { type: 'string', default: '20000' },
    dir: { type: 'string', default: '/tmp/pipeline-bench' },
    repeat: { type: 'string', default: '5' },
  },
});
const FILES = Number(values.files);
const SIZE = Number(values.size);
const DIR = path.resolve(values.dir as string);
const REPEAT = Number(values.repeat);
const CORES = availableParallelism();
const TSX = new URL(import.meta.resolve('tsx')).pathname;

const shell = (cmd: string) => execa(cmd, { shell: true, cwd: DIR, stdout: 'ignore' });
const cli = (...args: string[]) => execa(process.execPath, ['--import', TSX, 'pipeline.ts', ...args], { cwd: DIR });

function makeProject(): void {
  mkdirSync(DIR, { recursive: true });
  writeFileSync(path.join(DIR, 'package.json'), '{"type":"module"}');
  writeFileSync(
    path.join(DIR, 'pipeline.ts'),
    `import { definePipeline, runIfMain, stage } from ${JSON.stringify(ENGINE)};
const count = stage('count', { deps: ['data'], outs: ['artifacts/count.txt'], cmd: 'find data -type f | wc -l > artifacts/count.txt' });
const double = stage('double', { deps: ['artifacts/count.txt'], outs: ['artifacts/double.txt'], cmd: 'echo $(( $(cat artifacts/count.txt) * 2 )) > artifacts/double.txt' });
const report = stage('report', { deps: ['artifacts/double.txt'], outs: ['artifacts/report.txt'], cmd: 'echo "files x2: $(cat artifacts/double.txt)" > artifacts/report.txt' });
const pipeline = definePipeline([count, double, report]);
export default pipeline;
await runIfMain(import.meta.url, pipeline);
`,
  );
  const marker = path.join(DIR, `.data-complete-${FILES}-${SIZE}`);
  if (existsSync(marker)) return;
  rmSync(path.join(DIR, 'data'), { recursive: true, force: true });
  process.stdout.write(`generating ${FILES} files of ${SIZE} bytes in ${DIR}/data ... `);
  const buf = Buffer.alloc(SIZE);
  for (let i = 0; i < FILES; i++) {
    const dir = path.join(DIR, 'data', String(Math.floor(i / 1000) * 1000).padStart(5, '0'));
    if (i % 1000 === 0) mkdirSync(dir, { recursive: true });
    // Distinct content per file, cheap to make: the index stamped through a fixed pattern.
    buf.fill(i % 251);
    buf.writeUInt32LE(i, 0);
    buf.writeUInt32LE(i, SIZE - 8);
    writeFileSync(path.join(dir, `${String(i).padStart(5, '0')}.png`), buf);
  }
  writeFileSync(marker, '');
  process.stdout.write('done\n');
}

async function main(): Promise<void> {
  makeProject();
  rmSync(path.join(DIR, '.pipeline'), { recursive: true, force: true });
  rmSync(path.join(DIR, 'pipeline.lock'), { force: true });
  rmSync(path.join(DIR, 'artifacts'), { recursive: true, force: true });
  const rows: Array<[string, string]> = [];
  const note = (k: string, v: string) => {
    rows.push([k, v]);
    console.log(`${k.padEnd(48)} ${v}`);
  };
  note('files', `${FILES} x ${SIZE} B = ${((FILES * SIZE) / 1e9).toFixed(2)} GB, ${CORES} cores (page cache warm)`);

  // Warm the page cache so every contender reads from memory.
  await shell('cat data/*/* > /dev/null');

  // Baselines.
  const find = await median(() => shell(`find data -printf '%s %T@\\n' > /dev/null`));
  note('baseline: find -printf', `${find.toFixed(3)} s`);
  const nodeStat = await median(() =>
    execa(process.execPath, [
      '-e',
      `const fs=require('fs');const w=d=>{for(const e of fs.readdirSync(d,{withFileTypes:true})){const p=d+'/'+e.name;if(e.isDirectory())w(p);else fs.statSync(p)}};w(${JSON.stringify(`${DIR}/data`)})`,
    ]),
  );
  note('baseline: node readdirSync+statSync', `${nodeStat.toFixed(3)} s (${(nodeStat / find).toFixed(2)}x find)`);
  const nodeStart = await median(() => execa(process.execPath, ['--import', TSX, '-e', '0']));
  note('baseline: node + tsx start-up', `${nodeStart.toFixed(3)} s`);

  // (c) Cold hashing: the first status hashes everything (stat cache empty).
  await new Promise((r) => setTimeout(r, 2100)); // files older than the racy window
  const cold = await time(() => cli('status'));
  note('cold status (hash all files)', `${cold.toFixed(3)} s, ${((FILES * SIZE) / 1e6 / cold).toFixed(0)} MB/s`);
  // The same, in-process (no node/tsx start-up): the hasher's own throughput, the median of 3 cold
  // hashings (as b3sum's figure is the median of 3).
  const inProcess = await median(() => {
    rmSync(path.join(DIR, '.pipeline'), { recursive: true, force: true });
    return new Hasher(DIR, new StatCache(path.join(DIR, '.pipeline', 'stat-cache.json'))).hashPaths(['data']);
  }, 3);
  note(
    'cold hash in-process (Hasher.hashPaths)',
    `${inProcess.toFixed(3)} s, ${((FILES * SIZE) / 1e6 / inProcess).toFixed(0)} MB/s`,
  );
  const b3 = await execa('sh', ['-c', 'command -v b3sum'], { reject: false });
  if (b3.exitCode === 0) {
    const b3sum = await median(
      () => shell(`find data -type f -print0 | xargs -0 -n 2000 -P ${CORES} b3sum --num-threads 1 > /dev/null`),
      3,
    );
    note(`b3sum (xargs -P ${CORES}, same files)`, `${b3sum.toFixed(3)} s`);
    note(
      '(c) cold status throughput vs b3sum',
      `${(b3sum / cold).toFixed(2)}x (goal >= 1.0x; includes node+tsx start-up)`,
    );
    note('(c) in-process hashing throughput vs b3sum', `${(b3sum / inProcess).toFixed(2)}x`);
  } else note('(c) b3sum', 'not installed: apt-get install b3sum to compare');

  // First run, then no-op status and run.
  await cli('run');
  await cli('status'); // settles the stat cache for outs written just now
  await new Promise((r) => setTimeout(r, 2100));
  await cli('status');
  const noopStatus = await median(() => cli('status'));
  const noopRun = await median(() => cli('run'));
  note('no-op status', `${noopStatus.toFixed(3)} s`);
  note('no-op run', `${noopRun.toFixed(3)} s`);
  note('(a) no-op status / find', `${(noopStatus / find).toFixed(2)}x (goal <= 2.5x)`);
  note('(a) no-op run / find', `${(noopRun / find).toFixed(2)}x (goal <= 2.5x)`);
  note('(a) no-op status minus node+tsx start-up / find', `${((noopStatus - nodeStart) / find).toFixed(2)}x`);
  // The engine's own no-op freshness check of the folder, in this process: no start-up, no module loading.
  const inProcessNoop = await median(() =>
    new Hasher(DIR, new StatCache(path.join(DIR, '.pipeline', 'stat-cache.json'))).hashPaths(['data']),
  );
  note(
    '(a) in-process no-op check of data/ / find',
    `${(inProcessNoop / find).toFixed(2)}x (${inProcessNoop.toFixed(3)} s)`,
  );

  // (b) One file edited in place, same size.
  const victim = path.join(DIR, 'data', '00000', '00042.png');
  const b = Buffer.alloc(SIZE, 7);
  b.writeDoubleLE(Date.now(), 0); // different from any earlier run's edit
  writeFileSync(victim, b);
  const r = await cli('run', '--json');
  const summary = JSON.parse(r.stdout.trim().split('\n').at(-1) as string);
  const ran = summary.stages
    .filter((s: { outcome: string }) => s.outcome === 'ran')
    .map((s: { name: string }) => s.name);
  note(
    '(b) after editing 1 file: files read',
    `${summary.io.hashedFiles} (${summary.io.hashedBytes} B) of ${summary.io.statted} checked`,
  );
  note('(b) stages rerun', `${ran.join(', ') || 'none'} (early cutoff: count's out is unchanged)`);
}

await main();
