// The hidden-layer activations, with PyTorch's semantics (the seed study compared 19 of them in PyTorch).
// Each has two faces:
//  - scalar JS math (value and derivative) used by the hand-written training passes (backprop.ts), and
//  - a tfjs layer used by the saved model (save.ts): a built-in where tfjs computes the same function,
//    else `TorchActivation`, a small registered custom layer.
// Where the two libraries disagree, torch wins: hard_sigmoid is relu6(x+3)/6 (tfjs: 0.2x+0.5), gelu is the
// exact erf form (gelu_tanh is the approximation), leaky_relu's slope is 0.01 (tfjs: 0.3), prelu has one
// parameter per layer starting at 0.25, celu uses alpha 1 (and so equals elu).

import * as tf from '@tensorflow/tfjs';
import { sigmoidOf as sigmoid } from './kernels.ts';

export const ACTIVATIONS = [
  'relu',
  'leaky_relu',
  'elu',
  'selu',
  'celu',
  'gelu',
  'gelu_tanh',
  'silu',
  'swish',
  'mish',
  'softplus',
  'softsign',
  'tanh',
  'sigmoid',
  'hard_sigmoid',
  'hard_swish',
  'relu6',
  'prelu',
  'linear',
  'glu',
] as const;
export type ActivationName = (typeof ACTIVATIONS)[number];

/** Applied to each value on its own; `df` gets the input and the already computed output. */
export interface Elementwise {
  kind: 'elementwise';
  f: (x: number) => number;
  df: (x: number, y: number) => number;
}
/** x > 0 ? x : a * x, with `a` a trained parameter, one per layer (torch nn.PReLU()). */
export interface PReLU {
  kind: 'prelu';
  init: number;
}
/** torch nn.GLU(dim=-1): the input has 2h columns, out = first half * sigmoid(second half). */
export interface GLU {
  kind: 'glu';
}
export type Activation = Elementwise | PReLU | GLU;

const SELU_ALPHA = 1.6732632423543772;
const SELU_SCALE = 1.0507009873554805;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const GELU_C = 0.044715;

/** erfc with relative error < 1.2e-7 everywhere (Numerical Recipes' Chebyshev fit): below float32's step. */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const poly =
    -1.26551223 +
    t *
      (1.00002368 +
        t *
          (0.37409196 +
            t *
              (0.09678418 +
                t *
                  (-0.18628806 +
                    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  const r = t * Math.exp(-z * z + poly);
  return x >= 0 ? r : 2 - r;
}

// torch.nn.functional.softplus(beta=1, threshold=20): linear above the threshold.
const softplus = (x: number) => (x > 20 ? x : Math.log1p(Math.exp(x)));

function el(f: Elementwise['f'], df: Elementwise['df']): Elementwise {
  return { kind: 'elementwise', f, df };
}

const elu = el(
  (x) => (x > 0 ? x : Math.expm1(x)),
  (x, y) => (x > 0 ? 1 : y + 1),
);
const silu = el(
  (x) => x * sigmoid(x),
  (x) => {
    const s = sigmoid(x);
    return s * (1 + x * (1 - s));
  },
);

const SPECS: Record<ActivationName, Activation> = {
  relu: el(
    (x) => Math.max(x, 0),
    (x) => (x > 0 ? 1 : 0),
  ),
  leaky_relu: el(
    (x) => (x > 0 ? x : 0.01 * x),
    (x) => (x > 0 ? 1 : 0.01),
  ),
  elu,
  celu: elu,
  selu: el(
    (x) => SELU_SCALE * (x > 0 ? x : SELU_ALPHA * Math.expm1(x)),
    (x) => SELU_SCALE * (x > 0 ? 1 : SELU_ALPHA * Math.exp(x)),
  ),
  gelu: el(
    (x) => 0.5 * x * erfc(-x * INV_SQRT_2),
    (x) => 0.5 * erfc(-x * INV_SQRT_2) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x),
  ),
  gelu_tanh: el(
    (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x))),
    (x) => {
      const t = Math.tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x));
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_C * x * x);
    },
  ),
  silu,
  swish: silu,
  mish: el(
    (x) => x * Math.tanh(softplus(x)),
    (x) => {
      const t = Math.tanh(softplus(x));
      return t + x * sigmoid(x) * (1 - t * t);
    },
  ),
  softplus: el(softplus, (x) => (x > 20 ? 1 : sigmoid(x))),
  softsign: el(
    (x) => x / (1 + Math.abs(x)),
    (x) => 1 / (1 + Math.abs(x)) ** 2,
  ),
  tanh: el(Math.tanh, (_x, y) => 1 - y * y),
  sigmoid: el(sigmoid, (_x, y) => y * (1 - y)),
  hard_sigmoid: el(
    (x) => (x <= -3 ? 0 : x >= 3 ? 1 : x / 6 + 0.5),
    (x) => (x > -3 && x < 3 ? 1 / 6 : 0),
  ),
  hard_swish: el(
    (x) => (x <= -3 ? 0 : x >= 3 ? x : (x * (x + 3)) / 6),
    (x) => (x < -3 ? 0 : x <= 3 ? x / 3 + 0.5 : 1), // torch's hardswish_backward, boundaries included
  ),
  relu6: el(
    (x) => Math.min(Math.max(x, 0), 6),
    (x) => (x > 0 && x < 6 ? 1 : 0),
  ),
  prelu: { kind: 'prelu', init: 0.25 },
  linear: el(
    (x) => x,
    () => 1,
  ),
  glu: { kind: 'glu' },
};

/** The activation by name; an unknown name is a config mistake, so the message lists the valid ones. */
export function activation(name: string): Activation {
  if (!(ACTIVATIONS as readonly string[]).includes(name)) {
    throw new Error(`unknown activation '${name}'; valid: ${ACTIVATIONS.join(', ')}`);
  }
  return SPECS[name as ActivationName];
}

// --- tfjs side: the layer that computes the same function in a saved model ---------------------------------

// camelCase on purpose: tfjs-layers camel-cases every string in a config it loads ('hard_sigmoid' comes back
// as 'hardSigmoid'; the same breaks its own 'gelu_new', which is why gelu_tanh is here too).
type TorchOnly = 'hardSigmoid' | 'hardSwish' | 'geluTanh' | 'glu';

/** The activations tfjs has no identical (loadable) built-in for; registered, so tf.loadLayersModel can rebuild it. */
export class TorchActivation extends tf.layers.Layer {
  static className = 'TorchActivation';
  readonly fn: TorchOnly;
  constructor(config: { fn: TorchOnly; name?: string }) {
    super({ name: config.name });
    this.fn = config.fn;
  }
  override computeOutputShape(shape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    const s = (Array.isArray(shape[0]) ? shape[0] : shape) as tf.Shape;
    const last = s[s.length - 1];
    return this.fn === 'glu' && last != null ? [...s.slice(0, -1), last / 2] : s;
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.tidy(() => {
      if (this.fn === 'glu') {
        const [a, b] = tf.split(x, 2, -1);
        return tf.mul(a, tf.sigmoid(b));
      }
      if (this.fn === 'geluTanh') {
        const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(GELU_C, tf.pow(x, 3))));
        return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
      }
      const hs = tf.div(tf.relu6(tf.add(x, 3)), 6);
      return this.fn === 'hardSigmoid' ? hs : tf.mul(x, hs);
    });
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), fn: this.fn };
  }
}
tf.serialization.registerClass(TorchActivation);

/** A fresh tfjs layer computing `name` (weights, for prelu, are set by the caller). */
export function activationLayer(name: ActivationName, layerName: string): tf.layers.Layer {
  const builtin = (a: 'relu' | 'elu' | 'selu' | 'gelu' | 'swish' | 'mish' | 'softplus' | 'softsign') =>
    tf.layers.activation({ activation: a, name: layerName });
  switch (name) {
    case 'leaky_relu':
      return tf.layers.leakyReLU({ alpha: 0.01, name: layerName });
    case 'prelu':
      return tf.layers.prelu({
        sharedAxes: [1],
        alphaInitializer: tf.initializers.constant({ value: 0.25 }),
        name: layerName,
      });
    case 'celu':
      return builtin('elu');
    case 'gelu_tanh':
      return new TorchActivation({ fn: 'geluTanh', name: layerName });
    case 'silu':
      return builtin('swish');
    case 'tanh':
    case 'sigmoid':
    case 'relu6':
    case 'linear':
      return tf.layers.activation({ activation: name, name: layerName });
    case 'hard_sigmoid':
      return new TorchActivation({ fn: 'hardSigmoid', name: layerName });
    case 'hard_swish':
      return new TorchActivation({ fn: 'hardSwish', name: layerName });
    case 'glu':
      return new TorchActivation({ fn: 'glu', name: layerName });
    default:
      return builtin(name);
  }
}
