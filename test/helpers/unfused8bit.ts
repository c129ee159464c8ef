/**
 * A plain, unfused TypeScript reference of the 8-bit optimizer step (docs/architecture.md §1.3), built only
 * from public pieces: dequantize every state tensor, run the float64 rule over the whole tensor
 * (storing float32), then re-quantize each state block-wise and apply the state rules: the
 * sign-keeping nudge (signed states) and "a positive value never decodes to 0" (unsigned).
 */
import { createDynamicMap, dequantizeBlockwise, quantizeBlockwise } from '../../src/index.js';
import { REF_STATES, refStep, storeF32, type RefHyper } from './float64-rules.js';

export interface Unfused8bitState {
  codes: Uint8Array[];
  absmax: Float32Array[];
  t: number;
}

const maps = { signed: createDynamicMap(true), unsigned: createDynamicMap(false) };
/** Index of the unsigned map's smallest positive value. */
const smallestPositive = maps.unsigned.findIndex((v) => v > 0);

export function initUnfused(rule: string, n: number, blockSize: number): Unfused8bitState {
  const signs = REF_STATES[rule];
  return {
    codes: signs.map((s) => quantizeBlockwise(new Float32Array(n), { map: maps[s], blockSize }).codes),
    absmax: signs.map(() => new Float32Array(Math.ceil(n / blockSize))),
    t: 0,
  };
}

export function unfusedStep(rule: string, h: RefHyper, st: Unfused8bitState, p: Float32Array, g: Float32Array, blockSize: number): void {
  const signs = REF_STATES[rule];
  st.t += 1;
  const s = signs.map((sign, k) => Float64Array.from(dequantizeBlockwise(st.codes[k], st.absmax[k], { map: maps[sign], blockSize })));
  const p64 = Float64Array.from(p);
  refStep(rule, h, st.t, p64, Float64Array.from(g), s, storeF32);
  p.set(p64);
  signs.forEach((sign, k) => {
    const values = Float32Array.from(s[k]);
    const q = quantizeBlockwise(values, { map: maps[sign], blockSize });
    if (sign === 'signed') {
      for (let i = 0; i < values.length; i++) {
        const m = maps.signed[q.codes[i]];
        if (values[i] > 0 && m < 0) q.codes[i] += 1;
        else if (values[i] < 0 && m >= 0) q.codes[i] -= 1;
      }
    } else {
      for (let i = 0; i < values.length; i++) {
        if (values[i] > 0 && maps.unsigned[q.codes[i]] === 0) q.codes[i] = smallestPositive;
      }
    }
    st.codes[k] = q.codes;
    st.absmax[k] = q.absmax;
  });
}
