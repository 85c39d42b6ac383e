// A generated stand-in for Xenova/clip-vit-base-patch32: the same folder layout, config files and ONNX
// input/output names, so the embed stage loads it through exactly the code path of the real model
// (`CLIPVisionModelWithProjection.from_pretrained` + `AutoProcessor.from_pretrained`), but with seeded
// random weights, written offline in milliseconds.
//
//   <models>/<id>/config.json                        model_type clip_vision_model, "_generated" note
//   <models>/<id>/preprocessor_config.json           CLIP's: 224 bicubic resize, center crop, CLIP mean/std
//   <models>/<id>/onnx/vision_model.onnx             dtype fp32 (transformers.js: `vision_model` + '')
//   <models>/<id>/onnx/vision_model_quantized.onnx   dtype q8   (transformers.js: `vision_model` + '_quantized')
//
// Presets:
//   tiny     the offline default. Random features that keep local detail (the downstream probe tells open
//            from closed eyes on small drawn faces): Conv 3->C k8 s8 + bias, Relu, MaxPool 4x4 (a 7x7 grid
//            of 32 px cells, so a small shift of the eyes stays in the same cell), Flatten, MatMul to 512
//            + bias. Under 2 MB, well under a millisecond per image.
//   vit-b32  the real ViT-B/32 vision tower's graph and shapes (~88M parameters, ~350 MB fp32) with
//            random weights, for benchmarking what the real model costs.
//
// The q8 file is weight-only (int8 + DequantizeLinear): right for checking that dtype q8 loads and stays
// close to fp32, but not for q8 speed. ORT dequantizes every run, so vit-b32 q8 is slower than fp32 here,
// whereas Xenova's q8 file is dynamically quantized (MatMulInteger) and faster.

import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { mulberry32 } from '../random.ts';
import { type Attr, float, GraphBuilder, int, ints } from './onnx-graph.ts';

export type FixturePreset = 'tiny' | 'vit-b32';

export interface FixtureOptions {
  preset: FixturePreset;
  seed: number;
  /** test only: name the output wrongly */
  outputName?: string;
}

export const FIXTURE_FILES: string[] = [
  'config.json',
  'preprocessor_config.json',
  'onnx/vision_model.onnx',
  'onnx/vision_model_quantized.onnx',
];

const IMAGE_SIZE = 224;
const EMBED_DIM = 512;
const LN_EPS = 1e-5;

/** Uniform on [-scale, scale], seeded per tensor from (seed, tensor name) so adding a tensor never shifts the others. */
function uniform(seed: number, name: string, n: number, scale: number): Float32Array {
  let h = 0x811c9dc5 ^ Math.imul(seed | 0, 0x9e3779b1);
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  const rand = mulberry32(h);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (2 * rand() - 1) * scale;
  return out;
}

/** Uniform weights with standard deviation `std` (uniform on [-a, a] has std a / sqrt(3)). */
const random = (seed: number, name: string, n: number, std: number) => uniform(seed, name, n, std * Math.sqrt(3));
const size = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
const filled = (n: number, v: number) => new Float32Array(n).fill(v);

interface Built {
  graph: GraphBuilder;
  /** config.json fields describing the architecture. */
  config: Record<string, unknown>;
}

// tiny: patch grid 28x28 of 8 px, max-pooled to 7x7 cells of 32 px. The pooling is what makes a linear
// probe work: eyes move a few pixels with head tilt, and without it (flat 28x28x8 -> 512) a probe for
// open/closed eyes on the synthetic faces stayed near chance; with it, about 80-90%. 10 channels x 49 cells
// = 490 features <= 512, so the random projection loses nothing and the file stays ~1 MB.
const TINY = { channels: 10, kernel: 8, pool: 4 };

function buildTiny(seed: number, outputName: string): Built {
  const { channels: C, kernel: K, pool: P } = TINY;
  const g = new GraphBuilder(
    'clip_fixture_tiny',
    { name: 'pixel_values', dims: ['batch_size', 3, IMAGE_SIZE, IMAGE_SIZE] },
    { name: outputName, dims: ['batch_size', EMBED_DIM] },
  );
  const grid = IMAGE_SIZE / K / P;
  const features = C * grid * grid;
  const w = (name: string, dims: number[], std: number) => g.weight(name, dims, random(seed, name, size(dims), std));
  const f = (name: string, dims: number[], std: number) => g.floats(name, dims, random(seed, name, size(dims), std));

  const convW = w('patch_embedding.weight', [C, 3, K, K], 1 / Math.sqrt(3 * K * K));
  const convB = f('patch_embedding.bias', [C], 1);
  let x = g.op('Conv', ['pixel_values', convW, convB], { kernel_shape: ints([K, K]), strides: ints([K, K]) });
  x = g.op('Relu', [x]);
  x = g.op('MaxPool', [x], { kernel_shape: ints([P, P]), strides: ints([P, P]) });
  x = g.op('Flatten', [x], { axis: int(1) });
  x = g.op('MatMul', [x, w('visual_projection.weight', [features, EMBED_DIM], 1 / Math.sqrt(features))]);
  g.op('Add', [x, f('visual_projection.bias', [EMBED_DIM], 0.1)], {}, outputName);
  return {
    graph: g,
    config: { hidden_size: C, patch_size: K, num_hidden_layers: 0, num_attention_heads: 0, pool_size: P },
  };
}

// vit-b32: CLIPVisionModelWithProjection as HF transformers computes it.
const VIT = { hidden: 768, heads: 12, layers: 12, mlp: 3072, patch: 32 };

function buildVitB32(seed: number, outputName: string): Built {
  const { hidden: H, heads: NH, layers: L, mlp: M, patch: PS } = VIT;
  const headDim = H / NH;
  const tokens = (IMAGE_SIZE / PS) ** 2 + 1;
  const g = new GraphBuilder(
    'clip_fixture_vit_b32',
    { name: 'pixel_values', dims: ['batch_size', 3, IMAGE_SIZE, IMAGE_SIZE] },
    { name: outputName, dims: ['batch_size', EMBED_DIM] },
  );
  const std = 0.02;
  const w = (name: string, dims: number[]) => g.weight(name, dims, random(seed, name, size(dims), std));
  const f = (name: string, dims: number[]) => g.floats(name, dims, random(seed, name, size(dims), std));
  const ln = (x: string, prefix: string) =>
    g.op(
      'LayerNormalization',
      [x, g.floats(`${prefix}.weight`, [H], filled(H, 1)), g.floats(`${prefix}.bias`, [H], filled(H, 0))],
      {
        axis: int(-1),
        epsilon: float(LN_EPS),
      },
    );
  // HF's nn.Linear stores [out, in]; ONNX MatMul wants [in, out], which is what is generated here.
  const linear = (x: string, prefix: string, inDim: number, outDim: number) =>
    g.op('Add', [g.op('MatMul', [x, w(`${prefix}.weight`, [inDim, outDim])]), f(`${prefix}.bias`, [outDim])]);
  const shape = (name: string, v: number[]) => g.int64s(name, [v.length], v);
  const perm = (p: number[]): Record<string, Attr> => ({ perm: ints(p) });

  // Patches: [B,3,224,224] -> Conv k32 s32 -> [B,768,7,7] -> [B,49,768].
  const pre = 'vision_model.embeddings';
  let x = g.op('Conv', ['pixel_values', w(`${pre}.patch_embedding.weight`, [H, 3, PS, PS])], {
    kernel_shape: ints([PS, PS]),
    strides: ints([PS, PS]),
  });
  x = g.op('Reshape', [x, shape('shape_patches', [0, H, -1])]);
  x = g.op('Transpose', [x], perm([0, 2, 1]));
  // Class token broadcast to [B,1,768]: the batch size comes from the input's shape at run time.
  const batch = g.op('Gather', [g.op('Shape', ['pixel_values']), g.int64s('index_batch', [1], [0])], { axis: int(0) });
  const clsShape = g.op('Concat', [batch, shape('shape_cls_tail', [1, H])], { axis: int(0) });
  const cls = g.op('Expand', [f(`${pre}.class_embedding`, [1, 1, H]), clsShape]);
  x = g.op('Concat', [cls, x], { axis: int(1) });
  x = g.op('Add', [x, f(`${pre}.position_embedding.weight`, [tokens, H])]);
  x = ln(x, 'vision_model.pre_layrnorm');

  const splitHeads = shape('shape_heads', [0, 0, NH, headDim]);
  const mergeHeads = shape('shape_merge', [0, 0, H]);
  const attnScale = g.floats('attention_scale', [], [1 / Math.sqrt(headDim)]);
  const geluK = g.floats('quick_gelu_k', [], [1.702]);
  for (let i = 0; i < L; i++) {
    const p = `vision_model.encoder.layers.${i}`;
    let h = ln(x, `${p}.layer_norm1`);
    const heads = (proj: string, order: number[]) =>
      g.op('Transpose', [g.op('Reshape', [linear(h, `${p}.self_attn.${proj}`, H, H), splitHeads])], perm(order));
    const q = heads('q_proj', [0, 2, 1, 3]); // [B,12,50,64]
    const kT = heads('k_proj', [0, 2, 3, 1]); // [B,12,64,50]
    const v = heads('v_proj', [0, 2, 1, 3]); // [B,12,50,64]
    const attn = g.op('Softmax', [g.op('Mul', [g.op('MatMul', [q, kT]), attnScale])], { axis: int(-1) });
    let o = g.op('Transpose', [g.op('MatMul', [attn, v])], perm([0, 2, 1, 3]));
    o = linear(g.op('Reshape', [o, mergeHeads]), `${p}.self_attn.out_proj`, H, H);
    x = g.op('Add', [x, o]);

    h = ln(x, `${p}.layer_norm2`);
    h = linear(h, `${p}.mlp.fc1`, H, M);
    h = g.op('Mul', [h, g.op('Sigmoid', [g.op('Mul', [h, geluK])])]); // quick_gelu
    h = linear(h, `${p}.mlp.fc2`, M, H);
    x = g.op('Add', [x, h]);
  }
  const pooled = ln(
    g.op('Gather', [x, g.int64s('index_cls', [], [0])], { axis: int(1) }),
    'vision_model.post_layernorm',
  );
  g.op('MatMul', [pooled, w('visual_projection.weight', [H, EMBED_DIM])], {}, outputName);
  return {
    graph: g,
    config: {
      hidden_size: H,
      intermediate_size: M,
      num_attention_heads: NH,
      num_hidden_layers: L,
      patch_size: PS,
      hidden_act: 'quick_gelu',
      layer_norm_eps: LN_EPS,
    },
  };
}

const PREPROCESSOR = {
  crop_size: { height: IMAGE_SIZE, width: IMAGE_SIZE },
  do_center_crop: true,
  do_convert_rgb: true,
  do_normalize: true,
  do_rescale: true,
  do_resize: true,
  feature_extractor_type: 'CLIPFeatureExtractor',
  image_mean: [0.48145466, 0.4578275, 0.40821073],
  image_processor_type: 'CLIPImageProcessor',
  image_std: [0.26862954, 0.26130258, 0.27577711],
  resample: 3,
  rescale_factor: 0.00392156862745098,
  size: { shortest_edge: IMAGE_SIZE },
};

let tmpCounter = 0;

/** Write to a sibling temp file, then rename: a reader never sees half a model. */
function writeAtomic(file: string, data: Uint8Array | string) {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${tmpCounter++}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

export async function writeClipFixture(
  dir: string,
  opts: FixtureOptions,
): Promise<{ files: string[]; embedDim: number }> {
  if (!Number.isInteger(opts.seed)) throw new Error(`clip fixture: seed must be an integer, got ${opts.seed}`);
  const outputName = opts.outputName ?? 'image_embeds';
  const build = { tiny: buildTiny, 'vit-b32': buildVitB32 }[opts.preset];
  if (!build) throw new Error(`clip fixture: unknown preset '${opts.preset}' (use tiny or vit-b32)`);
  const { graph, config } = build(opts.seed, outputName);
  const note =
    `generated by stages/embed/clip-fixture.ts: seeded random weights (preset ${opts.preset}, seed ${opts.seed}), ` +
    'not CLIP. Same file layout and input/output names as Xenova/clip-vit-base-patch32; embeddings mean nothing ' +
    'beyond what random features keep.';

  // Config first, models last: the files a loader opens first are the cheap ones.
  writeAtomic(
    path.join(dir, 'config.json'),
    json({
      _generated: note,
      architectures: ['CLIPVisionModelWithProjection'],
      model_type: 'clip_vision_model',
      image_size: IMAGE_SIZE,
      num_channels: 3,
      projection_dim: EMBED_DIM,
      ...config,
      parameters: graph.paramCount(),
    }),
  );
  writeAtomic(path.join(dir, 'preprocessor_config.json'), json(PREPROCESSOR));
  writeAtomic(path.join(dir, 'onnx/vision_model.onnx'), graph.encode({ quantize: false, docString: note }));
  writeAtomic(
    path.join(dir, 'onnx/vision_model_quantized.onnx'),
    graph.encode({ quantize: true, docString: `${note} Weights int8, per-tensor scale (DequantizeLinear).` }),
  );
  return { files: [...FIXTURE_FILES], embedDim: EMBED_DIM };
}
