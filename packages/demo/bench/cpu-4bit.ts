/**
 * CPU step throughput of 4-bit against 8-bit (and 32-bit) Adam on the WebAssembly kernel, with
 * the machine's copy bandwidth printed beside it (issue 14: "CPU at least as fast as 8-bit in
 * Mparam/s"). The optimizers run interleaved, round by round, so that a busy machine slows
 * them alike; the table gives the median step time of each.
 *   node --import tsx packages/demo/bench/cpu-4bit.ts [--params 4M] [--rounds 15] [--threads 2] [--precision float32|exact]
 */
import os from 'node:os';
import { Adam, Adam4bit, Adam8bit, allocFloat32, createWasmKernel, wasmKernelsSupported, type Optimizer } from 'bitopt';
import { cpuCopyBandwidthGBs } from '../src/demo/copy-bandwidth.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}
const size = (s: string) => Math.round(parseFloat(s) * (/m$/i.test(s) ? 2 ** 20 : /k$/i.test(s) ? 2 ** 10 : 1));

const n = size(arg('params', '4M'));
const rounds = Number(arg('rounds', '15'));
const threads = Number(arg('threads', String(Math.min(os.availableParallelism(), 8))));
const precision = arg('precision', 'float32') as 'exact' | 'float32'; // the library default
if (!wasmKernelsSupported()) throw new Error('cpu-4bit: this Node has no WebAssembly SIMD/threads');

const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];

const classes: [string, new (p: Float32Array[], o?: object) => Optimizer][] = [
  ['Adam4bit', Adam4bit as never],
  ['Adam8bit', Adam8bit as never],
  ['Adam (32-bit)', Adam as never],
];
const kernel = createWasmKernel({ threads, precision });
await kernel.ready();
const runs = classes.map(([name, Cls]) => {
  const p = allocFloat32(n);
  const g = allocFloat32(n);
  for (let i = 0; i < n; i++) {
    p[i] = Math.sin(i);
    g[i] = 1e-2 * Math.cos(3 * i);
  }
  const opt = new Cls([p], { lr: 1e-3 });
  opt.setKernel(kernel);
  return { name, opt, g, times: [] as number[] };
});
for (const r of runs) for (let w = 0; w < 3; w++) await r.opt.step([r.g]); // warm-up: states placed, threads started
for (let round = 0; round < rounds; round++) {
  for (const r of runs) {
    const t0 = performance.now();
    await r.opt.step([r.g]);
    r.times.push(performance.now() - t0);
  }
}
const bw = cpuCopyBandwidthGBs(64 << 20);
console.log(`# ${n} params, wasm kernel (${precision}), ${threads} threads, ${rounds} interleaved rounds after 3 warm-up steps`);
console.log(`# machine: ${os.cpus()[0]?.model ?? 'unknown'} × ${os.availableParallelism()}, Node ${process.version}; copy bandwidth (Float32Array.set, 256 MiB, read+write, median of 7): ${bw.toFixed(2)} GB/s`);
console.log('| optimizer | state B/param | median ms/step | min ms/step | Mparam/s (median) | vs Adam8bit |');
console.log('|---|---|---|---|---|---|');
const base = median(runs[1].times);
for (const r of runs) {
  const m = median(r.times);
  console.log(`| ${r.name} | ${(r.opt.stateBytes() / n).toFixed(4)} | ${m.toFixed(2)} | ${Math.min(...r.times).toFixed(2)} | ${(n / 1e3 / m).toFixed(1)} | ${(base / m).toFixed(2)}× |`);
}
