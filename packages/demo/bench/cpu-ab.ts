/**
 * A/B of two builds of the CPU kernel in one process (docs/benchmarks.md, CPU, 2026-12-03):
 * `--before` and `--after` name two copies of the library's source entry (src/index.ts, each
 * with its own built kernels-wasm.ts), loaded side by side, each with its own wasm memory and
 * threads. Every case runs round by round, before and after interleaved, so a busy machine slows
 * both alike; the table gives the fastest and the median ns per parameter over the rounds, and
 * the copy bandwidth of the machine measured after the rounds.
 *   node --import tsx packages/demo/bench/cpu-ab.ts --before /tmp/old/src/index.ts --after src/index.ts [--rounds 20] [--rules adam,sgd] [--no-tfjs] [--block-sweep]
 * Cases: every rule listed in 8 and 4 bits, 1 thread at 64K elements (in cache); Adam8bit and
 * Adam4bit at 4M on 1 and 2 threads in kernel memory; Adam8bit at 4M on 1 and 2 threads with plain arrays;
 * tfjs-wasm's tf.train.adam at 4M in the same rounds (`--no-tfjs` leaves it out).
 * `--block-sweep` instead runs Adam and SGD, 8- and 4-bit, 1 thread at 64K, at block sizes 64,
 * 128, 256 and 1024: the per-block cost of a build is the slope of ns/param over 1/blockSize.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cpuCopyBandwidthGBs } from '../src/demo/copy-bandwidth.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}
const rounds = Number(arg('rounds', '20'));
const rules = arg('rules', 'adam,sgd,rmsprop,adagrad,lion,ademamix,lamb,lars,radam').split(',');
const CLASS: Record<string, string> = {
  adam: 'Adam',
  sgd: 'SGD',
  rmsprop: 'RMSprop',
  adagrad: 'Adagrad',
  lion: 'Lion',
  ademamix: 'AdEMAMix',
  lamb: 'LAMB',
  lars: 'LARS',
  radam: 'RAdam',
};

type Lib = Record<string, any>;
async function load(path: string): Promise<Lib> {
  return import(pathToFileURL(isAbsolute(path) ? path : resolve(path)).href);
}
const libs: Record<'before' | 'after', Lib> = { before: await load(arg('before', '')), after: await load(arg('after', '')) };

interface Case {
  n: number;
  step: () => void;
  best: number;
  times: number[];
}

function setup(lib: Lib, cls: string, n: number, threads: number, plain: boolean, blockSize?: number): Case {
  const kernel = threads === 1 ? one.get(lib)! : two.get(lib)!;
  const p: Float32Array = plain ? new Float32Array(n) : lib.allocFloat32(n);
  const g: Float32Array = plain ? new Float32Array(n) : lib.allocFloat32(n);
  for (let i = 0; i < n; i++) {
    p[i] = Math.sin(i);
    g[i] = 1e-2 * Math.cos(3 * i);
  }
  // 4-bit SGD, LAMB, LARS and Lion sit behind the parity gate (docs/quality-4bit.md); speed is not gated.
  const opt = new lib[cls]([p], { lr: 1e-3, ...(blockSize ? { blockSize } : {}), ...(cls.endsWith('4bit') ? { allow4bitWithoutParity: true } : {}) });
  opt.setKernel(kernel);
  for (let i = 0; i < 3; i++) opt.stepSync([g]);
  return { n, step: () => opt.stepSync([g]), best: Infinity, times: [] };
}

/** tf.train.adam on tfjs-core's wasm backend at n parameters (as `bitopt bench` runs it). */
async function tfjsWasmAdam(n: number): Promise<Case> {
  const tf = (await import('@tensorflow/tfjs-core')) as any;
  const wasm = (await import('@tensorflow/tfjs-backend-wasm')) as any;
  wasm.setWasmPaths(`${dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'))}/`);
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs wasm backend did not initialise');
  tf.variable(tf.randomNormal([n]), true, 'ab_adam');
  const g = tf.randomNormal([n]);
  const opt = tf.train.adam(1e-3);
  for (let i = 0; i < 2; i++) opt.applyGradients({ ab_adam: g });
  return { n, step: () => opt.applyGradients({ ab_adam: g }), best: Infinity, times: [] };
}

const one = new Map<Lib, unknown>();
const two = new Map<Lib, any>();
for (const lib of Object.values(libs)) {
  one.set(lib, lib.createWasmKernel({ threads: 1 }));
  const k = lib.createWasmKernel({ threads: 2 });
  await k.ready();
  two.set(lib, k);
}

const K = 64 * 1024;
const M4 = 4 << 20;
const names: string[] = [];
const cases: Record<string, Record<'before' | 'after', Case>> = {};
function add(name: string, make: (lib: Lib) => Case): void {
  names.push(name);
  cases[name] = { before: make(libs.before), after: make(libs.after) };
}
const sweep = process.argv.includes('--block-sweep');
if (sweep) {
  for (const cls of ['Adam8bit', 'Adam4bit', 'SGD8bit', 'SGD4bit']) {
    for (const bs of [64, 128, 256, 1024]) add(`${cls}, block ${bs}, 1 thread, 64K`, (lib) => setup(lib, cls, K, 1, false, bs));
  }
} else {
  for (const r of rules) {
    add(`${CLASS[r]}8bit, 1 thread, 64K`, (lib) => setup(lib, `${CLASS[r]}8bit`, K, 1, false));
    add(`${CLASS[r]}4bit, 1 thread, 64K`, (lib) => setup(lib, `${CLASS[r]}4bit`, K, 1, false));
  }
  add('Adam8bit, 1 thread, 4M kernel memory', (lib) => setup(lib, 'Adam8bit', M4, 1, false));
  add('Adam4bit, 1 thread, 4M kernel memory', (lib) => setup(lib, 'Adam4bit', M4, 1, false));
  add('Adam8bit, 2 threads, 4M kernel memory', (lib) => setup(lib, 'Adam8bit', M4, 2, false));
  add('Adam4bit, 2 threads, 4M kernel memory', (lib) => setup(lib, 'Adam4bit', M4, 2, false));
  add('Adam8bit, 1 thread, 4M plain arrays', (lib) => setup(lib, 'Adam8bit', M4, 1, true));
  add('Adam8bit, 2 threads, 4M plain arrays', (lib) => setup(lib, 'Adam8bit', M4, 2, true));
}
const tfjs = sweep || process.argv.includes('--no-tfjs') ? null : await tfjsWasmAdam(M4);

const load0 = os.loadavg()[0];
for (let round = 0; round < rounds; round++) {
  for (const name of names) {
    for (const side of round & 1 ? (['after', 'before'] as const) : (['before', 'after'] as const)) {
      const c = cases[name][side];
      const reps = c.n === K ? 20 : 1;
      time(c, reps);
    }
  }
  if (tfjs) time(tfjs, 1);
}

function time(c: Case, reps: number): void {
  const t = performance.now();
  for (let i = 0; i < reps; i++) c.step();
  const ns = ((performance.now() - t) * 1e6) / (reps * c.n);
  c.best = Math.min(c.best, ns);
  c.times.push(ns);
}
function median(a: number[]): number {
  return [...a].sort((x, y) => x - y)[a.length >> 1];
}

console.log(`# ${os.cpus()[0]?.model ?? 'unknown'} × ${os.availableParallelism()}, Node ${process.version}, load ${load0.toFixed(1)} -> ${os.loadavg()[0].toFixed(1)}; copy bandwidth (Float32Array.set 64 MiB, read+write, median of 7): ${cpuCopyBandwidthGBs().toFixed(1)} GB/s`);
console.log(`# fastest of ${rounds} interleaved rounds, ns per parameter (wasm kernel, float32 precision); Mparam/s = 1000 / ns (per thread count shown)`);
console.log('| case | before ns/param (fastest / median) | after ns/param (fastest / median) | after / before time (fastest) | after Mparam/s (fastest) |');
console.log('|---|---:|---:|---:|---:|');
const both = (c: Case) => `${c.best.toFixed(2)} / ${median(c.times).toFixed(2)}`;
for (const name of names) {
  const { before, after } = cases[name];
  console.log(`| ${name} | ${both(before)} | ${both(after)} | ${(after.best / before.best).toFixed(2)} | ${(1e3 / after.best).toFixed(0)} |`);
}
if (tfjs) console.log(`| tfjs-wasm tf.train.adam, 4M | ${both(tfjs)} | (same) | | ${(1e3 / tfjs.best).toFixed(0)} |`);
if (sweep) process.exit(0);
console.log('| 4-bit / 8-bit speed (Mparam/s ratio) | before | after | | |');
const ratio = (side: 'before' | 'after', a: string, b: string) => (cases[b][side].best / cases[a][side].best).toFixed(2);
for (const r of rules) {
  const a = `${CLASS[r]}4bit, 1 thread, 64K`;
  const b = `${CLASS[r]}8bit, 1 thread, 64K`;
  console.log(`| ${CLASS[r]}, 1 thread, 64K | ${ratio('before', a, b)} | ${ratio('after', a, b)} | | |`);
}
for (const t of ['1 thread', '2 threads']) {
  const a4 = `Adam4bit, ${t}, 4M kernel memory`;
  const a8 = `Adam8bit, ${t}, 4M kernel memory`;
  console.log(`| Adam, ${t}, 4M kernel memory | ${ratio('before', a4, a8)} | ${ratio('after', a4, a8)} | | |`);
}
if (tfjs) {
  const plain = cases['Adam8bit, 2 threads, 4M plain arrays'];
  const vs = (c: Case, m: (c: Case) => number) => (m(tfjs) / m(c)).toFixed(2);
  console.log('| 8-bit Adam plain arrays / tfjs-wasm Adam (Mparam/s ratio): fastest; median | before | after | | |');
  console.log(`| 4M, 2 threads | ${vs(plain.before, (c) => c.best)}; ${vs(plain.before, (c) => median(c.times))} | ${vs(plain.after, (c) => c.best)}; ${vs(plain.after, (c) => median(c.times))} | | |`);
}
process.exit(0);
