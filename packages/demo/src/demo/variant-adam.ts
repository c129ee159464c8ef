/**
 * Adam with a pluggable state quantization (map and block layout), for the ablation's
 * training runs. It uses bitopt's own Adam rule (RULES.adam) and the same policy as the
 * optimizer: tensors under min8bitSize and StableEmbedding's weights keep float32 state.
 * With the dynamic map and 256-element blocks it computes exactly what Adam8bit does
 * (a test checks that bit for bit).
 */
import { RULES, stateNudge } from 'bitopt';
import { dequantizeVariant, quantizeVariant, variantMap, type QuantVariant, type Quantized } from './quant-variants.js';

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
