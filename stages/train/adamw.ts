// torch.optim.AdamW, step for step (tfjs has no AdamW; its Adam folds no decoupled decay in). Per parameter,
// at step t (from 1), as in torch's single-tensor implementation:
//
//   p ← p · (1 − lr·wd)                       decoupled weight decay, applied to every parameter like
//   m ← β1·m + (1 − β1)·g                     torch's AdamW(model.parameters()) (biases and BN too)
//   v ← β2·v + (1 − β2)·g²
//   p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
//
// Works on plain Float32Arrays in place, so it costs one pass over the weights and no tensor allocations.

export interface AdamWOptions {
  lr: number; // learning rate (torch default 1e-3)
  weightDecay: number; // decoupled decay (torch default 1e-2; the seed study used 1e-3)
  beta1?: number; // default 0.9
  beta2?: number; // default 0.999
  eps?: number; // default 1e-8
}

export interface AdamWParam {
  value: Float32Array;
  grad: Float32Array;
}

export class AdamW {
  readonly lr: number;
  readonly weightDecay: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  private t = 0;
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];

  constructor(
    private readonly params: AdamWParam[],
    options: AdamWOptions,
  ) {
    this.lr = options.lr;
    this.weightDecay = options.weightDecay;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    for (const [k, v] of Object.entries({ lr: this.lr, weightDecay: this.weightDecay, eps: this.eps })) {
      if (!(Number.isFinite(v) && v >= 0)) throw new Error(`AdamW ${k} must be a finite number >= 0, got ${v}`);
    }
    for (const [k, v] of Object.entries({ beta1: this.beta1, beta2: this.beta2 })) {
      if (!(v >= 0 && v < 1)) throw new Error(`AdamW ${k} must be in [0, 1), got ${v}`);
    }
    this.m = params.map((p) => new Float32Array(p.value.length));
    this.v = params.map((p) => new Float32Array(p.value.length));
  }

  /** Steps taken so far. */
  get steps(): number {
    return this.t;
  }

  /** One update of every parameter from its current `grad`. */
  step(): void {
    this.t++;
    const { lr, beta1, beta2, eps } = this;
    const decay = 1 - lr * this.weightDecay;
    const stepSize = lr / (1 - beta1 ** this.t);
    const invBc2Sqrt = 1 / Math.sqrt(1 - beta2 ** this.t);
    for (let i = 0; i < this.params.length; i++) {
      const p = this.params[i];
      update(p.value, p.grad, this.m[i], this.v[i], beta1, beta2, decay, stepSize, invBc2Sqrt, eps);
    }
  }
}

// A separate monomorphic function: V8 compiles this loop about twice as fast as the same loop in a closure.
function update(
  value: Float32Array,
  grad: Float32Array,
  m: Float32Array,
  v: Float32Array,
  beta1: number,
  beta2: number,
  decay: number,
  stepSize: number,
  invBc2Sqrt: number,
  eps: number,
): void {
  const c1 = 1 - beta1;
  const c2 = 1 - beta2;
  for (let k = 0; k < value.length; k++) {
    const g = grad[k];
    const mk = Math.fround(beta1 * m[k] + c1 * g); // m and v are float32 state, as in torch
    const vk = Math.fround(beta2 * v[k] + c2 * g * g);
    m[k] = mk;
    v[k] = vk;
    value[k] = value[k] * decay - (stepSize * mk) / (Math.sqrt(vk) * invBc2Sqrt + eps);
  }
}
