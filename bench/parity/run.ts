// Parity bench: the seed study's recipe trained by tfjs (stages/train) and by PyTorch (train_torch.py) on
// the same embeddings and the same split, 3 seeds each; prints test accuracy and training throughput.
//
//   npx tsx bench/parity/run.ts [--embeddings artifacts/embeddings/embeddings.npy
//                                --ids artifacts/embeddings/ids.csv --split artifacts/split]
//                               [--seeds 3] [--max-epochs 100] [--no-torch] [--no-stock] [--json out.json]
//
// Without those files it generates data shaped like the default pipeline's (2000 × 512 float32, 2 classes,
// overlapping Gaussian clusters) and a stratified 80/10/10 split, in the pipeline's own formats, in a temp
// folder that both sides read. PyTorch comes from Debian (dev only): apt-get install -y python3-torch
// python3-numpy libopenblas0-pthread; it runs on one thread, like tfjs-wasm under Node.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { NpyWriter, readNpy } from '../../stages/embed/npy.ts';
import { readIds, readSplitRows } from '../../stages/split/ids.ts';
import { stratifiedSplit } from '../../stages/split/stratify.ts';
import { patchWasmMatMul, type SelectedBackend, selectBackend } from '../../stages/train/backend.ts';
import { Passes } from '../../stages/train/backprop.ts';
import { type Dataset, fit } from '../../stages/train/fit.ts';
import { buildMlp } from '../../stages/train/model.ts';
import { makeRng } from '../../stages/train/random.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RECIPE = {
  hidden: [384, 256, 128, 64, 32],
  activation: 'relu',
  batchnorm: true,
  dropout: 0.15,
  lr: 1e-3,
  weightDecay: 1e-3,
  batchSize: 64,
  patience: 10,
};

const { values: args } = parseArgs({
  options: {
    embeddings: { type: 'string', default: 'artifacts/embeddings/embeddings.npy' },
    ids: { type: 'string', default: 'artifacts/embeddings/ids.csv' },
    split: { type: 'string', default: 'artifacts/split' },
    seeds: { type: 'string', default: '3' },
    'max-epochs': { type: 'string', default: '100' },
    'no-torch': { type: 'boolean', default: false },
    'no-stock': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const seeds = Array.from({ length: Number(args.seeds) }, (_, i) => 42 + i);
const maxEpochs = Number(args['max-epochs']);

interface Files {
  embeddings: string;
  ids: string;
  split: string;
  what: string;
}

/** 2000 × 512, two classes whose means differ by a vector of norm 2.4: Bayes accuracy ≈ 89%. */
function generate(dir: string): Files {
  const rows = 2000;
  const dim = 512;
  const r = makeRng(2024);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const direction = Float32Array.from({ length: dim }, gauss);
  const norm = Math.hypot(...direction);
  const embeddings = path.join(dir, 'embeddings.npy');
  const w = new NpyWriter(embeddings, rows, dim);
  const ids: string[] = ['row,id,label'];
  for (let i = 0; i < rows; i++) {
    const label = i % 2;
    const row = Float32Array.from({ length: dim }, (_, j) => gauss() + ((label ? 1.2 : -1.2) * direction[j]) / norm);
    w.write(row);
    ids.push(`${i},${String(i).padStart(5, '0')},${label ? 'closed' : 'open'}`);
  }
  w.close();
  writeFileSync(path.join(dir, 'ids.csv'), `${ids.join('\n')}\n`);
  const parts = stratifiedSplit(readIds(readFileSync(path.join(dir, 'ids.csv'), 'utf8')), [0.8, 0.1, 0.1], 42);
  mkdirSync(path.join(dir, 'split'));
  for (const [name, list] of Object.entries(parts))
    writeFileSync(path.join(dir, 'split', `${name}.txt`), `${list.join('\n')}\n`);
  return {
    embeddings,
    ids: path.join(dir, 'ids.csv'),
    split: path.join(dir, 'split'),
    what: 'generated: 2000 × 512 float32, 2 Gaussian clusters (mean gap 2.4σ), stratified 80/10/10',
  };
}

function load(f: Files) {
  const m = readNpy(f.embeddings);
  const [rows, dim] = m.shape;
  const ids = readIds(readFileSync(f.ids, 'utf8'), f.ids);
  const classes = [...new Set(ids.map((r) => r.label))].sort();
  const labelOfRow = new Map(ids.map((r) => [r.row, classes.indexOf(r.label)]));
  const parts = readSplitRows(f.split, ids);
  const take = (list: number[]): Dataset => {
    const x = new Float32Array(list.length * dim);
    list.forEach((row, i) => {
      x.set(m.data.subarray(row * dim, (row + 1) * dim), i * dim);
    });
    return { x, y: Int32Array.from(list, (row) => labelOfRow.get(row) as number) };
  };
  return { rows, dim, classes, train: take(parts.train), val: take(parts.val), test: take(parts.test) };
}

type Data = ReturnType<typeof load>;

interface Run {
  side: string;
  seed: number;
  test_acc: number;
  val_acc: number;
  best_epoch: number;
  epochs: number;
  train_samples_per_s: number;
  cpu_samples_per_s: number;
}

async function runTfjs(b: SelectedBackend, data: Data, seed: number, side: string, epochs = maxEpochs): Promise<Run> {
  const model = buildMlp({ inputDim: data.dim, classes: data.classes.length, seed, ...RECIPE });
  const cpu0 = process.cpuUsage();
  const res = await fit({
    tf: b.tf,
    model,
    train: data.train,
    val: data.val,
    maxEpochs: epochs,
    seed,
    ...RECIPE,
  });
  const cpu = process.cpuUsage(cpu0);
  const passes = new Passes(b.tf, model);
  const acc = (d: Dataset) => passes.evaluate(d.x, d.y).correct / d.y.length;
  const run = {
    side,
    seed,
    test_acc: acc(data.test),
    val_acc: acc(data.val),
    best_epoch: res.bestEpoch,
    epochs: res.stoppedEpoch,
    train_samples_per_s: res.samplesPerSecond,
    cpu_samples_per_s: (res.stoppedEpoch * data.train.y.length) / ((cpu.user + cpu.system) / 1e6),
  };
  passes.dispose();
  return run;
}

function findPython(): string | null {
  for (const py of [process.env.PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean) as string[]) {
    if (spawnSync(py, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0) return py;
  }
  return null;
}

function runTorch(py: string, f: Files, seed: number): Run {
  const env = {
    ...process.env,
    OMP_WAIT_POLICY: 'PASSIVE',
    OMP_NUM_THREADS: '1',
    OPENBLAS_NUM_THREADS: '1',
    MKL_NUM_THREADS: '1',
  };
  const argv = [path.join(HERE, 'train_torch.py'), '--embeddings', f.embeddings, '--ids', f.ids, '--split', f.split];
  argv.push('--seed', String(seed), '--max-epochs', String(maxEpochs), '--hidden', RECIPE.hidden.join(','));
  argv.push('--activation', RECIPE.activation, '--dropout', String(RECIPE.dropout), '--lr', String(RECIPE.lr));
  argv.push('--weight-decay', String(RECIPE.weightDecay), '--batch-size', String(RECIPE.batchSize));
  argv.push('--patience', String(RECIPE.patience));
  const p = spawnSync(py, argv, { env, encoding: 'utf8' });
  if (p.status !== 0) throw new Error(`train_torch.py failed (${p.status}):\n${p.stderr}`);
  return JSON.parse(p.stdout.trim().split('\n').at(-1) as string);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]) => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main() {
  const tmp = mkdtempSync(path.join(tmpdir(), 'parity-'));
  try {
    const given = [args.embeddings, args.ids, args.split].every((p) => existsSync(p as string));
    const files: Files = given
      ? { embeddings: args.embeddings, ids: args.ids, split: args.split, what: `pipeline files (${args.embeddings})` }
      : generate(tmp);
    const data = load(files);
    console.log(`data: ${files.what}`);
    console.log(`split: train ${data.train.y.length}, val ${data.val.y.length}, test ${data.test.y.length}`);
    const py = args['no-torch'] ? null : findPython();
    if (!args['no-torch'] && !py)
      console.log('PyTorch not found (apt-get install -y python3-torch python3-numpy): tfjs only');
    const wasm = await selectBackend('wasm');
    console.log(`tfjs: ${wasm.detail}`);
    const sides: { name: string; backend: SelectedBackend }[] = [{ name: 'tfjs wasm', backend: wasm }];
    if (tfjsNodeInstalled()) {
      // tfjs-node registers its own backend on the shared tfjs core; switch back and forth per run
      sides.push({ name: 'tfjs-node', backend: await selectBackend('tensorflow') });
    }
    const runs: Run[] = [];
    for (const seed of seeds) {
      for (const s of sides) {
        await s.backend.tf.setBackend(s.backend.backend);
        runs.push(await runTfjs(s.backend, data, seed, s.name));
        console.log(JSON.stringify(runs.at(-1)));
      }
      if (py) {
        runs.push(runTorch(py, files, seed));
        console.log(JSON.stringify(runs.at(-1)));
      }
    }
    if (!args['no-stock']) {
      // the stock wasm BatchMatMul (transposed operands in a scalar loop), two epochs are enough to time it
      await wasm.tf.setBackend('wasm');
      patchWasmMatMul(wasm.tf, false);
      runs.push(await runTfjs(wasm, data, seeds[0], 'tfjs wasm, stock matmul (2 epochs)', 2));
      patchWasmMatMul(wasm.tf, true);
    }
    report(runs, files.what);
    if (args.json) writeFileSync(args.json, `${JSON.stringify({ data: files.what, runs }, null, 2)}\n`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function tfjsNodeInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
}

function report(runs: Run[], what: string) {
  const sides = [...new Set(runs.map((r) => r.side))];
  const torch = runs.filter((r) => r.side === 'pytorch');
  const torchSpeed = torch.length ? mean(torch.map((r) => r.train_samples_per_s)) : 0;
  const torchCpu = torch.length ? mean(torch.map((r) => r.cpu_samples_per_s)) : 0;
  const torchAcc = torch.length ? mean(torch.map((r) => r.test_acc)) : 0;
  const lines = [
    `\n${what}; ${RECIPE.hidden.join('-')} ${RECIPE.activation}, BN, dropout ${RECIPE.dropout}, AdamW ${RECIPE.lr}/${RECIPE.weightDecay}, batch ${RECIPE.batchSize}, patience ${RECIPE.patience}\n`,
    '| side | seeds | test accuracy | best / last epoch | train samples/s (wall) | samples/s (CPU time) | speed vs PyTorch |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const side of sides) {
    const rs = runs.filter((r) => r.side === side);
    const acc = rs.map((r) => r.test_acc * 100);
    const speed = mean(rs.map((r) => r.train_samples_per_s));
    const cpu = mean(rs.map((r) => r.cpu_samples_per_s));
    const epochs = `${mean(rs.map((r) => r.best_epoch)).toFixed(1)} / ${mean(rs.map((r) => r.epochs)).toFixed(1)}`;
    const vs = torchSpeed ? `${(speed / torchSpeed).toFixed(2)}x (CPU ${(cpu / torchCpu).toFixed(2)}x)` : '—';
    const accCell = side.includes('stock') ? '—' : `${mean(acc).toFixed(2)} ± ${std(acc).toFixed(2)}`;
    lines.push(
      `| ${side} | ${rs.length} | ${accCell} | ${side.includes('stock') ? '—' : epochs} | ${fmt(speed)} | ${fmt(cpu)} | ${vs} |`,
    );
  }
  if (torch.length) {
    for (const side of sides.filter((s) => s !== 'pytorch' && !s.includes('stock'))) {
      const acc = mean(runs.filter((r) => r.side === side).map((r) => r.test_acc));
      lines.push(
        `\n${side} − PyTorch test accuracy: ${((acc - torchAcc) * 100).toFixed(2)} points (mean of ${torch.length} seeds)`,
      );
    }
  }
  console.log(lines.join('\n'));
}

await main();
