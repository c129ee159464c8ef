/**
 * Where a CPU 8-bit Adam step's time goes (docs/benchmarks.md, CPU profile), by stage, in one
 * process, interleaved round by round so that a busy machine slows every stage alike; minimum
 * ns per parameter over the rounds:
 * - rule maths alone: 32-bit Adam on one thread, 64K elements in kernel memory (in cache);
 * - 8-bit / 4-bit codec (decode + absmax + encode): 8-bit / 4-bit Adam minus that;
 * - staging: the three window copies of a plain-array step (p in, g in, p out) at 4M;
 * - threads: a 4M kernel-memory 8-bit step on 1 thread vs 2 (sync and the shared memory bus).
 *   node --import tsx packages/demo/bench/cpu-stages.ts [--rounds 30]
 */
import os from 'node:os';
import { Adam, Adam4bit, Adam8bit, allocFloat32, createWasmKernel, type Optimizer } from 'bitopt';
import { cpuCopyBandwidthGBs } from '../src/demo/copy-bandwidth.js';

const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1] ?? 30) || 30;
type Ctor = new (p: Float32Array[], o?: object) => Optimizer;

function setup(Cls: Ctor, n: number, plain: boolean, kernel: ReturnType<typeof createWasmKernel>, options: object = {}) {
  const p = plain ? new Float32Array(n) : allocFloat32(n);
  const g = plain ? new Float32Array(n) : allocFloat32(n);
  for (let i = 0; i < n; i++) {
    p[i] = Math.sin(i);
    g[i] = 1e-2 * Math.cos(3 * i);
  }
  const opt = new Cls([p], { lr: 1e-3, ...options });
  opt.setKernel(kernel);
  for (let i = 0; i < 3; i++) opt.stepSync([g]);
  return { n, step: () => opt.stepSync([g]), best: Infinity };
}

const one = createWasmKernel({ threads: 1 });
const two = createWasmKernel({ threads: 2 });
await two.ready();
const K = 64 * 1024;
const M4 = 4 << 20;
const cases = {
  'Adam 32-bit, 1 thread, 64K': setup(Adam as never, K, false, one),
  'Adam8bit, 1 thread, 64K': setup(Adam8bit as never, K, false, one),
  'Adam4bit, 1 thread, 64K': setup(Adam4bit as never, K, false, one),
  'Adam4bit block 256, 1 thread, 64K': setup(Adam4bit as never, K, false, one, { blockSize: 256 }),
  'Adam8bit, 1 thread, 4M kernel memory': setup(Adam8bit as never, M4, false, one),
  'Adam8bit, 2 threads, 4M kernel memory': setup(Adam8bit as never, M4, false, two),
  'Adam8bit, 2 threads, 4M plain arrays': setup(Adam8bit as never, M4, true, two),
  'Adam4bit, 2 threads, 4M plain arrays': setup(Adam4bit as never, M4, true, two),
};
// The staging copies alone: three 4M-element copies between plain arrays and a kernel-memory window.
const plainA = new Float32Array(M4).fill(1);
const win = allocFloat32(128 * 1024);
const staging = {
  n: M4,
  best: Infinity,
  step() {
    for (let rep = 0; rep < 3; rep++) for (let s = 0; s < M4; s += win.length) win.set(plainA.subarray(s, s + win.length));
  },
};
const all = { ...cases, 'staging copies (3 × 4M via a 128K window), 1 thread': staging };
for (let r = 0; r < rounds; r++) {
  for (const c of Object.values(all)) {
    const reps = c.n === K ? 20 : 1;
    const t = performance.now();
    for (let i = 0; i < reps; i++) c.step();
    c.best = Math.min(c.best, ((performance.now() - t) * 1e6) / (reps * c.n));
  }
}
console.log(`# ${os.cpus()[0]?.model ?? 'unknown'} × ${os.availableParallelism()}, Node ${process.version}, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}; copy bandwidth (Float32Array.set 64 MiB, read+write, median of 7): ${cpuCopyBandwidthGBs().toFixed(1)} GB/s`);
console.log(`# fastest of ${rounds} interleaved rounds, ns per parameter (wasm kernel, float32 precision)`);
console.log('| stage / case | ns/param |');
console.log('|---|---:|');
for (const [name, c] of Object.entries(all)) console.log(`| ${name} | ${c.best.toFixed(2)} |`);
const ns = (k: keyof typeof cases) => cases[k].best;
console.log(`| = 8-bit codec (decode + absmax + encode of 2 states), 1 thread | ${(ns('Adam8bit, 1 thread, 64K') - ns('Adam 32-bit, 1 thread, 64K')).toFixed(2)} |`);
console.log(`| = 4-bit codec, 1 thread | ${(ns('Adam4bit, 1 thread, 64K') - ns('Adam 32-bit, 1 thread, 64K')).toFixed(2)} |`);
console.log(`| = 4M out of cache vs 64K in cache, 1 thread | ${(ns('Adam8bit, 1 thread, 4M kernel memory') - ns('Adam8bit, 1 thread, 64K')).toFixed(2)} |`);
console.log(`| = 2-thread scaling at 4M (1 thread / 2 threads) | ${(ns('Adam8bit, 1 thread, 4M kernel memory') / ns('Adam8bit, 2 threads, 4M kernel memory')).toFixed(2)}x |`);
console.log(`| = staging cost at 4M, 2 threads (plain - kernel memory) | ${(ns('Adam8bit, 2 threads, 4M plain arrays') - ns('Adam8bit, 2 threads, 4M kernel memory')).toFixed(2)} |`);
