/**
 * Adam with a pluggable state quantization (map and block layout), for the ablation's
 * training runs. It uses bitopt's own Adam rule (RULES.adam) and the same policy as the
 * optimizer: tensors under min8bitSize and StableEmbedding's weights keep float32 state.
 * With the dynamic map and 256-element blocks it computes exactly what Adam8bit does
 * (a test checks that bit for bit).
 */
import { RULES, stateNudge } from 'bitopt';
import {
  bytes4,
  dequantize4,
  dequantizeVariant,
  quantize4,
  quantizeVariant,
  variantMap,
  type Layout4,
  type Map4Candidate,
  type QuantVariant,
  type Quantized,
  type Quantized4,
} from './quant-variants.js';

interface Slot {
  param: Float32Array;
  quantized: boolean;
  float: Float32Array[]; // float32 states, or decode scratch for quantized ones
  q: Quantized[];
}

export class VariantAdam {
  private readonly rule = RULES.adam;
  private readonly slots: Slot[];
  private readonly maps: Float32Array[];
  private t = 0;
  /** The learning rate of the next step (the demo's schedule changes it). */
  lr: number;
  constructor(
    params: Float32Array[],
    private readonly variant: QuantVariant,
    private readonly options: { lr: number; fullPrecision?: ReadonlySet<Float32Array>; min8bitSize?: number },
  ) {
    this.lr = options.lr;
    const min = options.min8bitSize ?? 4096;
    this.maps = this.rule.states.map((sign) => variantMap(variant.map, sign === 'signed'));
    this.slots = params.map((param) => {
      const quantized = param.length >= min && !options.fullPrecision?.has(param);
      const float = this.rule.states.map(() => new Float32Array(param.length));
      const q = quantized ? this.rule.states.map((sign, k) => quantizeVariant(float[k], this.maps[k], variant.blockSize, stateNudge(sign))) : [];
      return { param, quantized, float, q };
    });
  }

  step(grads: Float32Array[]): void {
    this.t++;
    const h = { ...this.rule.defaults, lr: this.lr, optimBits: 8, blockSize: 256, min8bitSize: 4096, percentileClipping: 100 };
    const c = this.rule.coefficients(h, this.t);
    this.slots.forEach((slot, i) => {
      const g = grads[i];
      const s = slot.float;
      if (slot.quantized) slot.q.forEach((q, k) => dequantizeVariant(q, this.maps[k], s[k]));
      for (let j = 0; j < slot.param.length; j++) {
        if (g[j] - g[j] !== 0) {
          for (const st of s) st[j] = 0; // non-finite gradient: leave p, reset state
          continue;
        }
        slot.param[j] = this.rule.element(slot.param[j], g[j], s, j, c);
      }
      if (slot.quantized) slot.q.forEach((q, k) => quantizeVariant(s[k], this.maps[k], this.variant.blockSize, stateNudge(this.rule.states[k]), q));
    });
  }

  stateBytes(): number {
    return this.slots.reduce((a, s) => a + (s.quantized ? s.q.reduce((b, q) => b + q.codes.byteLength + q.absmax.byteLength, 0) : s.float.reduce((b, f) => b + f.byteLength, 0)), 0);
  }
}

/** A 4-bit ablation variant: a map per state (m signed, v unsigned) and a layout per state. */
export interface Variant4 {
  name: string;
  m: Map4Candidate;
  v: Map4Candidate;
  mLayout: Layout4;
  vLayout: Layout4;
}

/**
 * Adam with 4-bit states under a Variant4 (bitopt's RULES.adam, tensors under min8bitSize and
 * StableEmbedding's weights in float32, as Adam4bit). With the current maps, blocks of 128 and
 * no rank-1 scale it computes exactly what Adam4bit does (a test checks that bit for bit).
 */
export class VariantAdam4 {
  private readonly rule = RULES.adam;
  private readonly slots: { param: Float32Array; shape: readonly number[]; quantized: boolean; float: Float32Array[]; q: Quantized4[] }[];
  private t = 0;
  lr: number;
  constructor(
    params: Float32Array[],
    shapes: readonly (readonly number[])[],
    private readonly variant: Variant4,
    options: { lr: number; fullPrecision?: ReadonlySet<Float32Array>; min8bitSize?: number },
  ) {
    this.lr = options.lr;
    const min = options.min8bitSize ?? 4096;
    this.slots = params.map((param, i) => {
      const quantized = param.length >= min && !options.fullPrecision?.has(param);
      const float = this.rule.states.map(() => new Float32Array(param.length));
      const q = quantized ? float.map((f, k) => quantize4(f, shapes[i], this.candidate(k), this.layout(k))) : [];
      return { param, shape: shapes[i], quantized, float, q };
    });
  }

  private candidate(k: number): Map4Candidate {
    return k === 0 ? this.variant.m : this.variant.v;
  }
  private layout(k: number): Layout4 {
    return k === 0 ? this.variant.mLayout : this.variant.vLayout;
  }

  step(grads: Float32Array[]): void {
    this.t++;
    const h = { ...this.rule.defaults, lr: this.lr, optimBits: 4, blockSize: 128, min8bitSize: 4096, percentileClipping: 100 };
    const c = this.rule.coefficients(h, this.t);
    this.slots.forEach((slot, i) => {
      const g = grads[i];
      const s = slot.float;
      if (slot.quantized) slot.q.forEach((q, k) => dequantize4(q, slot.shape, this.candidate(k), s[k]));
      for (let j = 0; j < slot.param.length; j++) {
        if (g[j] - g[j] !== 0) {
          for (const st of s) st[j] = 0;
          continue;
        }
        slot.param[j] = this.rule.element(slot.param[j], g[j], s, j, c);
      }
      if (slot.quantized) slot.q.forEach((q, k) => quantize4(s[k], slot.shape, this.candidate(k), this.layout(k), q));
    });
  }

  stateBytes(): number {
    return this.slots.reduce((a, s) => a + (s.quantized ? s.q.reduce((b, q) => b + bytes4(q), 0) : s.float.reduce((b, f) => b + f.byteLength, 0)), 0);
  }
}
