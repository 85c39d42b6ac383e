// A small ONNX graph builder: nodes, initializers and the one input/output -> ModelProto bytes.
// Kept apart from the CLIP fixture so the fixture reads as a list of layers, not protobuf plumbing.
//
// Weights added with `weight()` are the large MatMul/Conv matrices. `encode({ quantize: true })` stores
// each of them as int8 with one per-tensor scale and puts a DequantizeLinear node in front (weight-only
// quantization), so the fp32 and q8 files come from one graph description and differ only there.
//
// Output is deterministic: no timestamps, fixed producer fields, nodes and initializers in insertion order.

import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type DataType = onnxProto.onnx.TensorProto.DataType;

/** ORT 1.30 runs opset 17 fully; it is the first with LayerNormalization. */
export const OPSET = 17;
const IR_VERSION = 8;

/** Attribute values are tagged: a bare `1` could be an int or a float, and ONNX cares. */
export type Attr = { int: number } | { float: number } | { ints: number[] };
export const int = (v: number): Attr => ({ int: v });
export const float = (v: number): Attr => ({ float: v });
export const ints = (v: number[]): Attr => ({ ints: v });

/** A tensor dimension: a fixed size or a named dynamic one (`batch_size`). */
export type Dim = number | string;

interface Initializer {
  name: string;
  dims: number[];
  dataType: DataType;
  bytes: Uint8Array;
  /** The float data of a `weight()`, kept so `encode({ quantize: true })` can turn it into int8. */
  float?: Float32Array;
}

const bytesOf = (a: Float32Array | BigInt64Array | Int8Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function attribute(name: string, a: Attr): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if ('int' in a) return { name, type: T.INT, i: a.int };
  if ('float' in a) return { name, type: T.FLOAT, f: a.float };
  return { name, type: T.INTS, ints: a.ints };
}

function valueInfo(name: string, dims: Dim[]): onnxProto.onnx.IValueInfoProto {
  const dim = dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return { name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim } } } };
}

/** int8 with a per-tensor symmetric scale (zero point 0): x ~= q * scale. */
export function quantizeInt8(x: Float32Array): { q: Int8Array; scale: number } {
  let max = 0;
  for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs(x[i]));
  const scale = Math.fround(max > 0 ? max / 127 : 1);
  const q = new Int8Array(x.length);
  for (let i = 0; i < x.length; i++) q[i] = Math.max(-127, Math.min(127, Math.round(x[i] / scale)));
  return { q, scale };
}

export class GraphBuilder {
  private nodes: onnxProto.onnx.INodeProto[] = [];
  private inits: Initializer[] = [];
  private names = new Set<string>();
  private counter = 0;

  constructor(
    private readonly graphName: string,
    private readonly input: { name: string; dims: Dim[] },
    private readonly output: { name: string; dims: Dim[] },
  ) {}

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`onnx-graph: duplicate tensor name '${name}'`);
    this.names.add(name);
    return name;
  }

  /** A fresh intermediate tensor name. */
  tmp(hint: string): string {
    return this.claim(`${hint}_${this.counter++}`);
  }

  /** A large float matrix (MatMul/Conv weight): int8 + DequantizeLinear in the quantized file. */
  weight(name: string, dims: number[], data: Float32Array): string {
    this.check(name, dims, data.length);
    this.inits.push({
      name: this.claim(name),
      dims,
      dataType: onnx.TensorProto.DataType.FLOAT,
      bytes: bytesOf(data),
      float: data,
    });
    return name;
  }

  /** A float tensor kept as float in every file (biases, norms, embeddings, scalars). */
  floats(name: string, dims: number[], data: Float32Array | number[]): string {
    const a = data instanceof Float32Array ? data : Float32Array.from(data);
    this.check(name, dims, a.length);
    this.inits.push({ name: this.claim(name), dims, dataType: onnx.TensorProto.DataType.FLOAT, bytes: bytesOf(a) });
    return name;
  }

  /** An int64 tensor (shapes for Reshape/Expand, indices for Gather). */
  int64s(name: string, dims: number[], data: number[]): string {
    this.check(name, dims, data.length);
    const a = BigInt64Array.from(data.map(BigInt));
    this.inits.push({ name: this.claim(name), dims, dataType: onnx.TensorProto.DataType.INT64, bytes: bytesOf(a) });
    return name;
  }

  private check(name: string, dims: number[], length: number) {
    const n = dims.reduce((a, b) => a * b, 1);
    if (n !== length) throw new Error(`onnx-graph: '${name}' has ${length} values for dims [${dims}]`);
  }

  /** Appends a node (callers add them in topological order) and returns its output name. */
  op(type: string, inputs: string[], attrs: Record<string, Attr> = {}, out?: string): string {
    const output = out === undefined ? this.tmp(type.toLowerCase()) : this.claim(out);
    this.nodes.push({
      opType: type,
      name: `${type}_${this.nodes.length}`,
      input: inputs,
      output: [output],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return output;
  }

  /** Number of float parameters (what a fp32 file mostly consists of). */
  paramCount(): number {
    return this.inits.reduce(
      (n, t) => n + (t.dataType === onnx.TensorProto.DataType.FLOAT ? t.bytes.length / 4 : 0),
      0,
    );
  }

  encode(opts: { quantize: boolean; docString: string }): Uint8Array {
    const T = onnx.TensorProto.DataType;
    const initializer: onnxProto.onnx.ITensorProto[] = [];
    const dequant: onnxProto.onnx.INodeProto[] = [];
    for (const t of this.inits) {
      if (!(opts.quantize && t.float)) {
        initializer.push({ name: t.name, dims: t.dims, dataType: t.dataType, rawData: t.bytes });
        continue;
      }
      const { q, scale } = quantizeInt8(t.float);
      const [qn, sn, zn] = [`${t.name}_quantized`, `${t.name}_scale`, `${t.name}_zero_point`];
      initializer.push({ name: qn, dims: t.dims, dataType: T.INT8, rawData: bytesOf(q) });
      initializer.push({ name: sn, dims: [], dataType: T.FLOAT, rawData: bytesOf(Float32Array.of(scale)) });
      initializer.push({ name: zn, dims: [], dataType: T.INT8, rawData: bytesOf(Int8Array.of(0)) });
      dequant.push({
        opType: 'DequantizeLinear',
        name: `${t.name}_DequantizeLinear`,
        input: [qn, sn, zn],
        output: [t.name],
      });
    }
    const model: onnxProto.onnx.IModelProto = {
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET }],
      producerName: 'ts-pipeline clip-fixture',
      producerVersion: '1',
      docString: opts.docString,
      graph: {
        name: this.graphName,
        // DequantizeLinear nodes read only initializers, so putting them first keeps the order topological.
        node: [...dequant, ...this.nodes],
        initializer,
        input: [valueInfo(this.input.name, this.input.dims)],
        output: [valueInfo(this.output.name, this.output.dims)],
      },
    };
    return onnx.ModelProto.encode(model).finish();
  }
}
