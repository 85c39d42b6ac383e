// Which tfjs backend trains the model, and the one fix the wasm backend needs to train at a useful speed.
//
//   auto:       tfjs-node-gpu (installed, and a GPU is visible) → tfjs-node (installed) → wasm → cpu
//   tensorflow: tfjs-node-gpu / tfjs-node, or an error saying how to install them
//   wasm:       WebAssembly with SIMD; single-threaded under Node (its threaded build needs browser Workers)
//   cpu:        plain JS, slow, always there
//
// tfjs-node and tfjs-node-gpu are optionalDependencies whose native install can fail, so they are loaded
// by a computed specifier: a missing one is a value here, not a crash at import time.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tfjs from '@tensorflow/tfjs';

type TF = typeof tfjs;
export type BackendName = 'auto' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_NAMES: readonly BackendName[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

export interface SelectedBackend {
  tf: TF; // the tfjs namespace to use (tfjs-node's, when that was chosen)
  backend: string; // tf.getBackend(): 'tensorflow' | 'wasm' | 'cpu'
  detail: string; // one line for the log, e.g. "wasm (SIMD, 1 thread, BatchMatMul transpose fix)"
}

const require = createRequire(import.meta.url);

function installed(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

/** A visible NVIDIA device (what tfjs-node-gpu's CUDA build would use). */
function gpuVisible(): boolean {
  return existsSync('/dev/nvidia0') || existsSync('/proc/driver/nvidia/gpus');
}

async function loadNode(pkg: string): Promise<TF> {
  const spec = pkg; // computed, so neither tsc nor the bundler insists that it exists
  const mod = (await import(spec)) as { default?: TF } & TF;
  const tf = mod.default ?? mod;
  await tf.setBackend('tensorflow');
  await tf.ready();
  return tf;
}

const INSTALL_HINT =
  'the TensorFlow backend is not installed: `npm install @tensorflow/tfjs-node` (CPU) or ' +
  '`npm install @tensorflow/tfjs-node-gpu` (CUDA); both need a prebuilt libtensorflow for this platform. ' +
  'Or use train.backend: wasm';

async function selectTensorflow(log: (m: string) => void): Promise<SelectedBackend | null> {
  const candidates: [string, string][] = [];
  if (installed('@tensorflow/tfjs-node-gpu') && gpuVisible()) candidates.push(['@tensorflow/tfjs-node-gpu', 'GPU']);
  if (installed('@tensorflow/tfjs-node')) candidates.push(['@tensorflow/tfjs-node', 'CPU']);
  if (installed('@tensorflow/tfjs-node-gpu') && !gpuVisible()) candidates.push(['@tensorflow/tfjs-node-gpu', 'no GPU']);
  for (const [pkg, what] of candidates) {
    try {
      const tf = await loadNode(pkg);
      return { tf, backend: tf.getBackend(), detail: `tensorflow (${pkg}, ${what})` };
    } catch (e) {
      log(`${pkg} is installed but did not load: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  return null;
}

let wasmPathsSet = false;

async function selectWasm(): Promise<SelectedBackend> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  if (!wasmPathsSet && !tfjs.findBackend('wasm')) {
    // Under Node the backend looks for its .wasm files relative to the page; point it at the package.
    const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
    wasm.setWasmPaths(dir + path.sep);
    wasmPathsSet = true;
  }
  if (!(await tfjs.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
  await tfjs.ready();
  const patched = patchWasmMatMul(tfjs, true);
  const simd = await tfjs.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const threads = wasm.getThreadsCount();
  return {
    tf: tfjs,
    backend: 'wasm',
    detail: `wasm (${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'}${patched ? ', BatchMatMul transpose fix' : ''})`,
  };
}

export async function selectBackend(name: BackendName, log: (m: string) => void = () => {}): Promise<SelectedBackend> {
  if (!BACKEND_NAMES.includes(name)) {
    throw new Error(`unknown backend '${name}'; valid: ${BACKEND_NAMES.join(', ')}`);
  }
  if (name === 'tensorflow') {
    const tf = await selectTensorflow(log);
    if (!tf) throw new Error(INSTALL_HINT);
    return tf;
  }
  if (name === 'auto') {
    const tf = await selectTensorflow(log);
    if (tf) return tf;
  }
  if (name === 'auto' || name === 'wasm') {
    try {
      return await selectWasm();
    } catch (e) {
      if (name === 'wasm') throw e;
      log(`wasm backend unavailable (${(e as Error).message}); using cpu`);
    }
  }
  await tfjs.setBackend('cpu');
  await tfjs.ready();
  // the cpu backend prints a multi-line "install tfjs-node" banner on first use; the detail line says it
  (tfjs.backend() as { firstUse?: boolean }).firstUse = false;
  return { tf: tfjs, backend: 'cpu', detail: 'cpu (plain JavaScript)' };
}

// --- the wasm BatchMatMul fix --------------------------------------------------------------------------------
//
// tfjs-backend-wasm 4.22 sends a matmul to XNNPACK only when neither operand is transposed, and otherwise
// runs a scalar loop. A dense layer's backward pass needs Aᵀ·B and A·Bᵀ, so stock training is several times
// slower than it must be. The fix materialises the transposed operand with the (fast) native Transpose
// kernel, then calls the stock kernel untransposed. Results agree to float rounding (6e-5 measured).

type KernelFunc = tfjs.KernelConfig['kernelFunc'];
let stockMatMul: tfjs.KernelConfig | null = null;

/** Installs (enabled) or removes the fix on the wasm backend; returns whether it is now installed. */
export function patchWasmMatMul(tf: TF, enabled: boolean): boolean {
  const current = tf.getKernel('BatchMatMul', 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (!current || !transpose) return false;
  stockMatMul ??= current;
  const isPatched = current !== stockMatMul;
  if (enabled === isPatched) return enabled;
  tf.unregisterKernel('BatchMatMul', 'wasm');
  if (!enabled) {
    tf.registerKernel(stockMatMul);
    return false;
  }
  const stock = stockMatMul.kernelFunc;
  const patched: KernelFunc = (args) => {
    const { inputs, attrs } = args;
    const backend = args.backend as { disposeData(id: tfjs.DataId): void };
    const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
    if (!transposeA && !transposeB) return stock(args);

    const temps: tfjs.TensorInfo[] = [];
    const flip = (x: tfjs.TensorInfo) => {
      const perm = x.shape.map((_, i) => i);
      const n = perm.length;
      [perm[n - 2], perm[n - 1]] = [perm[n - 1], perm[n - 2]];
      const out = transpose.kernelFunc({ inputs: { x }, backend: args.backend, attrs: { perm } }) as tfjs.TensorInfo;
      temps.push(out);
      return out;
    };
    const a = transposeA ? flip(inputs.a as tfjs.TensorInfo) : inputs.a;
    const b = transposeB ? flip(inputs.b as tfjs.TensorInfo) : inputs.b;
    try {
      return stock({
        inputs: { a, b },
        backend: args.backend,
        attrs: { ...attrs, transposeA: false, transposeB: false },
      });
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };
  tf.registerKernel({ ...stockMatMul, kernelFunc: patched });
  return true;
}
