/**
 * A plain, unfused model of the 4-bit optimizer step (docs/architecture.md §1.5), written from
 * the contract, not from src/codecs/blockwise4.ts: decode every state (map[code] · absmax), run
 * the float64 rule over the whole tensor (storing float32), re-encode each block with a
 * brute-force nearest search and the sign rule for signed states. Codes are kept one per
 * element (unpacked), so packing is checked separately.
 */
import { stateMap4 } from '../../src/index.js';
import { REF_STATES, refStep, storeF32, type RefHyper } from './float64-rules.js';

export interface Unfused4bitState {
  codes: Uint8Array[];
  absmax: Float32Array[];
  t: number;
}

function nearest(map: Float32Array, q: number): number {
  let best = 0;
  for (let c = 1; c < map.length; c++) if (Math.abs(q - map[c]) < Math.abs(q - map[best])) best = c;
  return best;
}

export function initUnfused4(rule: string, n: number, blockSize: number): Unfused4bitState {
  return {
    codes: REF_STATES[rule].map((s) => new Uint8Array(n).fill(nearest(stateMap4(s), 0))),
    absmax: REF_STATES[rule].map(() => new Float32Array(Math.ceil(n / blockSize))),
    t: 0,
  };
}

export function unfusedStep4(rule: string, h: RefHyper, st: Unfused4bitState, p: Float32Array, g: Float32Array, blockSize: number): void {
  const signs = REF_STATES[rule];
  st.t += 1;
  const s = signs.map((sign, k) => Float64Array.from(st.codes[k], (c, i) => Math.fround(stateMap4(sign)[c] * st.absmax[k][Math.floor(i / blockSize)])));
  const p64 = Float64Array.from(p);
  refStep(rule, h, st.t, p64, Float64Array.from(g), s, storeF32);
  p.set(p64);
  signs.forEach((sign, k) => {
    const map = stateMap4(sign);
    for (let start = 0; start < p.length; start += blockSize) {
      const end = Math.min(p.length, start + blockSize);
      let absmax = 0;
      for (let i = start; i < end; i++) absmax = Math.max(absmax, Math.abs(s[k][i]));
      absmax = Math.fround(absmax);
      st.absmax[k][start / blockSize] = absmax;
      for (let i = start; i < end; i++) {
        const x = s[k][i];
        let c = nearest(map, absmax === 0 ? 0 : Math.fround(x / absmax));
        if (sign === 'signed' && x > 0 && map[c] < 0) c += 1;
        if (sign === 'signed' && x < 0 && map[c] >= 0) c -= 1;
        st.codes[k][i] = c;
      }
    }
  });
}
