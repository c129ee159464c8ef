/**
 * "Distance to the float32 twin" for bitopt's 8-bit encoding rules and the reference library's
 * (bitsandbytes), on the same gradients: the table in docs/from-bitsandbytes.md.
 *
 * The reference cannot run here (it needs CUDA), so its side is a RE-IMPLEMENTATION of its
 * encoding choices over bitopt's own rule maths (RULES.*.element, the same block loop as the
 * ablation's packages/demo/src/demo/variant-adam.ts):
 *   - Adam's `v`: plain nearest code on the unsigned map (bitopt: the positive rule, §2.1);
 *   - RMSprop's `v`: the signed map with the sign rule, as the reference gives every one-state
 *     optimizer (bitopt: the unsigned map with the positive rule, §2.2).
 * Everything else (maps, sign rule for signed states, block 256, float64 element maths) is the
 * same on both sides, so the table isolates those two deviations.
 *
 * Each run feeds one fixed gradient stream (independent of the parameters, so all three
 * optimizers see identical inputs) for T steps and reports ‖Δp₈ − Δp₃₂‖ / ‖Δp₃₂‖, the relative
 * L2 distance of the parameter displacement from the float32 twin's.
 *
 * Usage: node --import tsx scripts/distance-to-float32.ts [steps=200] [n=16384]
 */
import { createDynamicMap, dequantizeBlock, FRAMEWORK_DEFAULTS, quantizeBlock, RULES, type StateNudge, type UpdateRule } from '../src/index.js';

const T = Number(process.argv[2] ?? 200);
const N = Number(process.argv[3] ?? 16384);
const BLOCK = 256;

/** A deterministic PRNG (mulberry32) and a standard normal from it. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function normal(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** Gradient streams: per-element scales fixed, noise new each step. */
const STREAMS: Record<string, (seed: number) => (t: number) => Float32Array> = {
  'gaussian, one scale': (seed) => {
    const r = rng(seed);
    return () => Float32Array.from({ length: N }, () => normal(r) * 1e-2);
  },
  'heavy-tailed scales (1e-6…1)': (seed) => {
    const r = rng(seed);
    const scale = Float32Array.from({ length: N }, () => 10 ** (-6 * r()));
    return () => Float32Array.from({ length: N }, (_, i) => normal(r) * scale[i]);
  },
  'sparse: 90% of elements 1e-5 of the rest': (seed) => {
    const r = rng(seed);
    const scale = Float32Array.from({ length: N }, () => (r() < 0.9 ? 1e-5 : 1));
    return () => Float32Array.from({ length: N }, (_, i) => normal(r) * scale[i]);
  },
};

interface Encoding {
  maps: Float32Array[];
  nudges: StateNudge[];
}

/** T steps of `rule` over `grads`; `enc` null keeps float32 states. Returns the final parameters. */
function run(rule: UpdateRule, hyper: Record<string, unknown>, grads: (t: number) => Float32Array, enc: Encoding | null): Float32Array {
  const p = new Float32Array(N);
  const s = rule.states.map(() => new Float32Array(N));
  const codes = rule.states.map(() => new Uint8Array(N));
  const absmax = rule.states.map(() => new Float32Array(Math.ceil(N / BLOCK)));
  const h = { ...rule.defaults, ...FRAMEWORK_DEFAULTS, ...hyper } as Parameters<UpdateRule['coefficients']>[0];
  for (let t = 1; t <= T; t++) {
    const g = grads(t);
    const c = rule.coefficients(h, t);
    for (let b = 0; b * BLOCK < N; b++) {
      const start = b * BLOCK;
      const len = Math.min(BLOCK, N - start);
      if (enc) s.forEach((st, k) => dequantizeBlock(enc.maps[k], codes[k], start, len, absmax[k][b], st, start));
      for (let j = start; j < start + len; j++) p[j] = rule.element(p[j], g[j], s, j, c);
      if (enc) s.forEach((st, k) => (absmax[k][b] = quantizeBlock(enc.maps[k], st, start, len, codes[k], start, enc.nudges[k])));
    }
  }
  return p;
}

function distance(a: Float32Array, twin: Float32Array): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - twin[i]) ** 2;
    n += twin[i] ** 2;
  }
  return Math.sqrt(d / n);
}

const signed = createDynamicMap(true);
const unsigned = createDynamicMap(false);
const CASES: { name: string; rule: UpdateRule; hyper: Record<string, unknown>; bitopt: Encoding; reference: Encoding }[] = [
  {
    name: 'Adam8bit (lr 1e-3)',
    rule: RULES.adam,
    hyper: { lr: 1e-3 },
    bitopt: { maps: [signed, unsigned], nudges: ['sign', 'positive'] },
    reference: { maps: [signed, unsigned], nudges: ['sign', 'none'] },
  },
  {
    name: 'RMSprop8bit (lr 1e-3)',
    rule: RULES.rmsprop,
    hyper: { lr: 1e-3 },
    bitopt: { maps: [unsigned], nudges: ['positive'] },
    reference: { maps: [signed], nudges: ['sign'] },
  },
];

console.log(`distance to the float32 twin, ‖Δp₈ − Δp₃₂‖/‖Δp₃₂‖ after ${T} steps, ${N} parameters, block ${BLOCK}, seeds 1–3 (mean, min–max)`);
console.log('| optimizer | gradients | bitopt | reference rules (re-implemented) | reference / bitopt |');
console.log('|---|---|---|---|---|');
for (const cs of CASES) {
  for (const [stream, make] of Object.entries(STREAMS)) {
    const ours: number[] = [];
    const theirs: number[] = [];
    for (const seed of [1, 2, 3]) {
      // The same stream, regenerated from its seed for each optimizer.
      const twin = run(cs.rule, cs.hyper, make(seed), null);
      ours.push(distance(run(cs.rule, cs.hyper, make(seed), cs.bitopt), twin));
      theirs.push(distance(run(cs.rule, cs.hyper, make(seed), cs.reference), twin));
    }
    const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
    const fmt = (x: number[]) => `${mean(x).toExponential(2)} (${Math.min(...x).toExponential(1)}–${Math.max(...x).toExponential(1)})`;
    console.log(`| ${cs.name} | ${stream} | ${fmt(ours)} | ${fmt(theirs)} | ${(mean(theirs) / mean(ours)).toFixed(2)}× |`);
  }
}
