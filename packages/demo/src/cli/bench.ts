/**
 * `bitopt bench`: optimizer step throughput on the CPU (the default WebAssembly kernel) for each
 * rule in 8 and 32 bits, next to the machine's measured copy bandwidth and TensorFlow.js's own
 * Adam on its `cpu` and `wasm` backends, all in the same run. `--backend webgpu` hands over to
 * ./bench-webgpu.js.
 *
 * Each rule runs twice: with plain `Float32Array` parameters and gradients (what users pass:
 * the kernel stages them through wasm memory, three extra copies per step) and with arrays in
 * the kernels' shared memory (allocFloat32, zero copy). Each row's bound is the copy bandwidth
 * over the bytes the step must move, staging copies included for plain arrays.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname } from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import * as classes from 'bitopt';
import { allocFloat32, createReferenceKernel, createWasmKernel, RULES, wasmKernelsSupported, type Optimizer } from 'bitopt';
import { cpuCopyBandwidthGBs } from '../demo/copy-bandwidth.js';

const M = 1 << 20;

/** Class names per rule: [8-bit, 32-bit]. */
const CLASSES: Record<string, [string, string]> = {
  adam: ['Adam8bit', 'Adam'],
  sgd: ['SGD8bit', 'SGD'],
  rmsprop: ['RMSprop8bit', 'RMSprop'],
  adagrad: ['Adagrad8bit', 'Adagrad'],
  lion: ['Lion8bit', 'Lion'],
  ademamix: ['AdEMAMix8bit', 'AdEMAMix'],
  lamb: ['LAMB8bit', 'LAMB'],
  lars: ['LARS8bit', 'LARS'],
  radam: ['RAdam8bit', 'RAdam'],
};

export interface CpuBenchOptions {
  sizes: number[];
  optimizers: string[];
  bits: (8 | 32)[];
  iterations: number;
  warmup: number;
  blockSize: number;
  threads: number;
  tfjs: boolean;
  kernel: 'wasm' | 'reference';
  /** wasm kernel arithmetic: 'exact' (bit-identical to the reference) or 'float32' (the library default). */
  precision: 'exact' | 'float32';
  /** Where parameters and gradients live: plain Float32Arrays (staged) and/or kernel memory. */
  arrays: ArrayKind[];
}

export type ArrayKind = 'plain' | 'kernel';

/** Staging traffic per parameter of a plain-array step, counted as the copy measurement counts (read + write): p in, g in, p out. */
const STAGING_BYTES = 3 * 8;

export interface CpuBenchRow {
  optimizer: string;
  rule: string;
  bits: 8 | 32;
  params: number;
  arrays: ArrayKind;
  /** Median over the timed steps. */
  msPerStep: number;
  /** Fastest timed step (a hint of what an idle machine gives when the median is noisy). */
  msMin: number;
  mparamPerS: number;
  stateBytesPerParam: number;
  /** Bytes a step must move per parameter (p read+write, g read, states read+write, norm pass; plus STAGING_BYTES for plain arrays). */
  bytesPerParam: number;
  gbPerS: number;
  /** The copy bound: copy bandwidth at this size / bytesPerParam, in Mparam/s. */
  boundMparamPerS: number;
  /** gbPerS / the copy bandwidth measured at this size (= mparamPerS / boundMparamPerS). */
  ofCopy: number;
}

export interface TfjsRow {
  backend: 'cpu' | 'wasm';
  params: number;
  msPerStep: number;
  msMin: number;
  mparamPerS: number;
}

export interface CpuBenchResult {
  machine: { cpu: string; cores: number; threads: number; node: string; platform: string };
  command: string;
  kernel: string;
  /** Plain Float32Array copy bandwidth (read + write) at each size, measured just before its rows. */
  copyGbPerS: Record<number, number>;
  rows: CpuBenchRow[];
  tfjs: TfjsRow[];
  tfjsError?: string;
  figures: string[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Traffic per parameter of one step: what a kernel at memory bandwidth has to move. */
function bytesPerParam(rule: string, bits: 8 | 32, blockSize: number): number {
  const r = RULES[rule];
  const state = bits === 8 ? 1 + 4 / blockSize : 4;
  let b = 12 + 2 * r.states.length * state;
  if (r.usesTrustRatio) b += 8 + r.states.length * state; // the norm pass reads p, g and states
  return b;
}

function fillRandom(a: Float32Array, scale: number, seed: number): void {
  let s = seed >>> 0 || 1;
  for (let i = 0; i < a.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    a[i] = ((s >>> 0) / 4294967296 - 0.5) * scale;
  }
}

type Ctor = new (params: Float32Array[], options?: Record<string, unknown>) => Optimizer;

async function benchOptimizer(
  rule: string,
  bits: 8 | 32,
  n: number,
  p: Float32Array,
  g: Float32Array,
  o: CpuBenchOptions,
  kernel: ReturnType<typeof createWasmKernel> | ReturnType<typeof createReferenceKernel>,
  tick: () => void,
): Promise<{ ms: number; min: number; stateBytes: number }> {
  const name = CLASSES[rule][bits === 8 ? 0 : 1];
  const Cls = (classes as unknown as Record<string, Ctor>)[name];
  fillRandom(p, 2, 1 + n);
  const opt = new Cls([p], { blockSize: o.blockSize });
  opt.setKernel(kernel);
  const times: number[] = [];
  for (let i = 0; i < o.warmup + o.iterations; i++) {
    const t = performance.now();
    await opt.step([g]);
    if (i >= o.warmup) times.push(performance.now() - t);
    tick();
  }
  return { ms: median(times), min: Math.min(...times), stateBytes: opt.stateBytes() };
}

interface Tf {
  setBackend(name: string): Promise<boolean>;
  variable(t: unknown, trainable?: boolean, name?: string): { dispose(): void };
  randomNormal(shape: number[]): { dispose(): void };
  train: { adam(lr: number): { applyGradients(g: Record<string, unknown>): void; dispose(): void } };
  disposeVariables(): void;
}

/** tf.train.adam steps on tfjs-core's `backend`, at each size. */
async function benchTfjs(tf: Tf, backend: 'cpu' | 'wasm', sizes: number[], o: CpuBenchOptions, tick: () => void): Promise<TfjsRow[]> {
  if (!(await tf.setBackend(backend))) throw new Error(`tfjs backend '${backend}' did not initialise`);
  const rows: TfjsRow[] = [];
  for (const n of sizes) {
    const name = `bench_${backend}_${n}`;
    const v = tf.variable(tf.randomNormal([n]), true, name);
    const g = tf.randomNormal([n]);
    const opt = tf.train.adam(1e-3);
    const times: number[] = [];
    // The cpu backend is slow (seconds per step at 16M): fewer iterations there, still >= 10 timed.
    const warmup = Math.min(o.warmup, 2);
    for (let i = 0; i < warmup + o.iterations; i++) {
      const t = performance.now();
      opt.applyGradients({ [name]: g }); // synchronous on the cpu and wasm backends
      if (i >= warmup) times.push(performance.now() - t);
      tick();
    }
    const ms = median(times);
    rows.push({ backend, params: n, msPerStep: ms, msMin: Math.min(...times), mparamPerS: n / ms / 1e3 });
    opt.dispose();
    g.dispose();
    v.dispose();
  }
  return rows;
}

async function loadTfjs(): Promise<Tf> {
  const tf = (await import('@tensorflow/tfjs-core')) as unknown as Tf;
  await import('@tensorflow/tfjs-backend-cpu');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  // In Node the wasm backend loads its .wasm files from the package's dist folder.
  const require = createRequire(import.meta.url);
  wasm.setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}/`);
  return tf;
}

export async function benchCpu(o: CpuBenchOptions, log: (s: string) => void = () => {}): Promise<CpuBenchResult> {
  for (const r of o.optimizers) if (!CLASSES[r]) throw new Error(`bench: unknown optimizer '${r}' (known: ${Object.keys(CLASSES).join(', ')})`);
  const useWasm = o.kernel === 'wasm' && wasmKernelsSupported();
  const kernel = useWasm ? createWasmKernel({ threads: o.threads, precision: o.precision }) : createReferenceKernel();
  if (useWasm) await (kernel as ReturnType<typeof createWasmKernel>).ready();
  log(`kernel: ${kernel.name}${useWasm ? `, ${o.threads} thread(s)` : ''}`);
  const copyGbPerS: Record<number, number> = {};
  let tf: Tf | null = null;
  let tfjsError: string | undefined;
  if (o.tfjs) {
    try {
      tf = await loadTfjs();
    } catch (e) {
      tfjsError = (e as Error).message;
    }
  }
  const perSizeSteps = o.optimizers.length * o.bits.length * o.arrays.length * (o.warmup + o.iterations);
  const tfjsSteps = o.tfjs ? 2 * (Math.min(o.warmup, 2) + o.iterations) : 0;
  const bar = new cliProgress.SingleBar(
    { format: 'bench [{bar}] {percentage}% | {value}/{total} steps | {task}', stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(o.sizes.length * (perSizeSteps + tfjsSteps), 0, { task: 'starting' });
  const rows: CpuBenchRow[] = [];
  const tfjs: TfjsRow[] = [];
  try {
    // Size by size, everything in one stretch (copy, bitopt, tfjs), so that a busy machine
    // skews the comparisons at one size as little as possible.
    for (const n of o.sizes) {
      copyGbPerS[n] = cpuCopyBandwidthGBs(n, 10);
      const arrays = {
        plain: [new Float32Array(n), new Float32Array(n)],
        kernel: useWasm ? [allocFloat32(n), allocFloat32(n)] : [new Float32Array(n), new Float32Array(n)],
      };
      for (const [, g] of Object.values(arrays)) fillRandom(g, 0.02, 7);
      for (const rule of o.optimizers) {
        for (const bits of o.bits) {
          // Plain and kernel-memory rows back to back, so that their ratio sees the same machine.
          for (const kind of o.arrays) {
            const optimizer = CLASSES[rule][bits === 8 ? 0 : 1];
            bar.update({ task: `${optimizer} ${fmtSize(n)} ${kind}` });
            const [p, g] = arrays[kind];
            const { ms, min, stateBytes } = await benchOptimizer(rule, bits, n, p, g, o, kernel, () => bar.increment());
            const bpp = bytesPerParam(rule, bits, o.blockSize) + (kind === 'plain' && useWasm ? STAGING_BYTES : 0);
            const gbPerS = (bpp * n) / (ms / 1e3) / 1e9;
            rows.push({
              optimizer,
              rule,
              bits,
              params: n,
              arrays: kind,
              msPerStep: ms,
              msMin: min,
              mparamPerS: n / ms / 1e3,
              stateBytesPerParam: stateBytes / n,
              bytesPerParam: bpp,
              gbPerS,
              boundMparamPerS: (copyGbPerS[n] * 1e3) / bpp,
              ofCopy: gbPerS / copyGbPerS[n],
            });
          }
        }
      }
      if (tf && !tfjsError) {
        try {
          for (const backend of ['wasm', 'cpu'] as const) {
            bar.update({ task: `tfjs-${backend} adam ${fmtSize(n)}` });
            tfjs.push(...(await benchTfjs(tf, backend, [n], o, () => bar.increment())));
          }
        } catch (e) {
          tfjsError = (e as Error).message;
        }
      }
    }
  } finally {
    bar.stop();
  }
  const result: CpuBenchResult = {
    machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.availableParallelism(), threads: useWasm ? o.threads : 1, node: process.version, platform: `${process.platform} ${process.arch}` },
    command: `bitopt ${process.argv.slice(2).join(' ')}`,
    kernel: kernel.name,
    copyGbPerS,
    rows,
    tfjs,
    ...(tfjsError ? { tfjsError } : {}),
    figures: [],
  };
  result.figures = figures(result);
  return result;
}

/** The run's key ratios (8-bit Adam against tfjs-wasm Adam and against its copy bound), stated, not judged. */
function figures(r: CpuBenchResult): string[] {
  const out: string[] = [];
  for (const n of Object.keys(r.copyGbPerS).map(Number)) {
    const tw = r.tfjs.find((x) => x.backend === 'wasm' && x.params === n);
    for (const a of r.rows.filter((x) => x.rule === 'adam' && x.bits === 8 && x.params === n)) {
      const vsTf = tw ? `, ${(a.mparamPerS / tw.mparamPerS).toFixed(2)}x tfjs-wasm Adam (${tw.mparamPerS.toFixed(0)})` : '';
      out.push(
        `8-bit Adam ${fmtSize(n)}, ${a.arrays} arrays: ${a.mparamPerS.toFixed(0)} Mparam/s${vsTf}, ${(100 * a.ofCopy).toFixed(0)}% of its copy bound ` +
          `${a.boundMparamPerS.toFixed(0)} Mparam/s (${a.bytesPerParam.toFixed(2)} B/param at ${r.copyGbPerS[n].toFixed(1)} GB/s copy)`,
      );
    }
  }
  return out;
}

function fmtSize(n: number): string {
  return n % M === 0 ? `${n / M}M` : n % 1024 === 0 ? `${n / 1024}K` : String(n);
}

/** A Markdown table: the first `text` columns left-aligned, the rest right-aligned. */
function pad(cells: string[][], text = 2): string {
  const widths = cells[0].map((_, c) => Math.max(...cells.map((r) => r[c].length)));
  return cells.map((r) => '| ' + r.map((x, c) => (c < text ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join(' | ') + ' |').join('\n');
}

/** The result as Markdown tables (also printed by the command). */
export function formatCpuTable(r: CpuBenchResult): string {
  const head = ['optimizer', 'params', 'arrays', 'ms/step', 'min ms', 'Mparam/s', 'state B/param', 'B moved/param', 'GB/s', 'copy bound Mparam/s', '% of bound'];
  const rows = r.rows.map((x) => [
    x.optimizer,
    fmtSize(x.params),
    x.arrays,
    x.msPerStep.toFixed(2),
    x.msMin.toFixed(2),
    x.mparamPerS.toFixed(0),
    x.stateBytesPerParam.toFixed(3),
    x.bytesPerParam.toFixed(2),
    x.gbPerS.toFixed(1),
    x.boundMparamPerS.toFixed(0),
    (100 * x.ofCopy).toFixed(0) + '%',
  ]);
  const sep = head.map((_, c) => (c < 3 ? '---' : '---:'));
  let out = `kernel ${r.kernel}, ${r.machine.threads} thread(s); ${r.machine.cpu}, ${r.machine.cores} cores; node ${r.machine.node}\n`;
  out += `plain Float32Array copy (read + write): ${Object.entries(r.copyGbPerS).map(([n, g]) => `${g.toFixed(1)} GB/s at ${fmtSize(Number(n))}`).join(', ')}\n\n`;
  out += pad([head, sep, ...rows], 3);
  if (r.tfjs.length) {
    const th = ['tfjs tf.train.adam', 'params', 'ms/step', 'min ms', 'Mparam/s', '8-bit Adam speed-up, plain arrays', 'kernel memory'];
    const tr = r.tfjs.map((t) => {
      const ratio = (kind: ArrayKind) => {
        const a = r.rows.find((x) => x.rule === 'adam' && x.bits === 8 && x.params === t.params && x.arrays === kind);
        return a ? `${(a.mparamPerS / t.mparamPerS).toFixed(2)}x` : '-';
      };
      return [`tfjs-${t.backend}`, fmtSize(t.params), t.msPerStep.toFixed(2), t.msMin.toFixed(2), t.mparamPerS.toFixed(1), ratio('plain'), ratio('kernel')];
    });
    out += '\n\n' + pad([th, th.map((_, c) => (c < 2 ? '---' : '---:')), ...tr]);
  }
  if (r.tfjsError) out += `\n\ntfjs not measured: ${r.tfjsError}`;
  if (r.figures.length) out += '\n\n' + r.figures.join('\n');
  return out + '\n';
}

function parseSizes(s: string): number[] {
  return s.split(',').map((x) => {
    const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(x.trim());
    if (!m) throw new Error(`bench: bad size '${x}' (use e.g. 1M, 4M, 16M, 65536)`);
    const n = Math.round(Number(m[1]) * (m[2].toLowerCase() === 'm' ? M : m[2].toLowerCase() === 'k' ? 1024 : 1));
    if (!(n > 0)) throw new Error(`bench: size must be positive, got '${x}'`);
    return n;
  });
}

function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`bench: --${name} must be a positive integer, got '${v}'`);
  return n;
}

/** `bitopt bench`: optimizer step throughput (see the module comment). */
export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('time optimizer steps: every rule in 8 and 32 bits vs copy bandwidth and tfjs Adam')
    .option('--backend <backend>', 'cpu or webgpu', 'cpu')
    .option('--sizes <list>', 'parameter counts, e.g. 1M,4M,16M (default 1M,4M,16M; webgpu: its own default)')
    .option('--optimizers <list>', `rules: ${Object.keys(CLASSES).join(',')} or 'all'`, 'all')
    .option('--bits <list>', '8, 32 or 8,32', '8,32')
    .option('--iterations <n>', 'timed steps per row (median reported; >= 10 recommended)', '10')
    .option('--warmup <n>', 'untimed steps first', '3')
    .option('--block-size <n>', '8-bit block size', '256')
    .option('--threads <n>', 'threads for the wasm kernel (default: available cores)')
    .option('--kernel <kernel>', 'wasm or reference', 'wasm')
    .option('--precision <precision>', "wasm arithmetic: float32 (the library default: identical states, parameters within a few ulps) or exact (bit-identical to the reference)", 'float32')
    .option('--arrays <list>', 'plain (Float32Arrays, staged), kernel (allocFloat32, zero copy) or both', 'plain,kernel')
    .option('--no-tfjs', 'skip the TensorFlow.js comparison')
    .option('--json <file>', 'also write the results as JSON')
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      const optimizers = opts.optimizers === 'all' ? Object.keys(CLASSES) : String(opts.optimizers).split(',').map((s) => s.trim().toLowerCase());
      const bits = String(opts.bits)
        .split(',')
        .map((b) => {
          if (b.trim() !== '8' && b.trim() !== '32') throw new Error(`bench: --bits takes 8 and/or 32, got '${b}'`);
          return Number(b) as 8 | 32;
        });
      const iterations = positiveInt('iterations', String(opts.iterations));
      const sizes = opts.sizes ? parseSizes(String(opts.sizes)) : undefined;
      if (opts.backend === 'webgpu') {
        await runWebgpu({ sizes, optimizers, bits, iterations, json: opts.json as string | undefined });
        return;
      }
      if (opts.backend !== 'cpu') throw new Error(`bench: --backend must be cpu or webgpu, got '${String(opts.backend)}'`);
      const kernel = opts.kernel === 'reference' ? 'reference' : opts.kernel === 'wasm' ? 'wasm' : null;
      if (!kernel) throw new Error(`bench: --kernel must be wasm or reference, got '${String(opts.kernel)}'`);
      const precision = opts.precision === 'float32' ? 'float32' : opts.precision === 'exact' ? 'exact' : null;
      if (!precision) throw new Error(`bench: --precision must be exact or float32, got '${String(opts.precision)}'`);
      const arrays = String(opts.arrays)
        .split(',')
        .map((a) => {
          if (a.trim() !== 'plain' && a.trim() !== 'kernel') throw new Error(`bench: --arrays takes plain and/or kernel, got '${a}'`);
          return a.trim() as ArrayKind;
        });
      const result = await benchCpu(
        {
          sizes: sizes ?? [M, 4 * M, 16 * M],
          optimizers,
          bits,
          iterations,
          warmup: Number(opts.warmup) >= 0 ? Number(opts.warmup) : 3,
          blockSize: positiveInt('block-size', String(opts.blockSize)),
          threads: opts.threads ? positiveInt('threads', String(opts.threads)) : os.availableParallelism(),
          tfjs: opts.tfjs !== false,
          kernel,
          precision,
          arrays,
        },
        (s) => process.stderr.write(s + '\n'),
      );
      process.stdout.write(formatCpuTable(result));
      if (opts.json) {
        writeFileSync(String(opts.json), JSON.stringify(result, null, 2) + '\n');
        process.stderr.write(`wrote ${String(opts.json)}\n`);
      }
    });
}

interface WebgpuModule {
  benchWebgpu(options: { sizes?: number[]; optimizers?: string[]; iters?: number; json?: string; log?: (line: string) => void }): Promise<unknown>;
  formatWebgpuTable?(r: unknown): string;
}

async function runWebgpu(o: { sizes?: number[]; optimizers: string[]; bits: (8 | 32)[]; iterations: number; json?: string }): Promise<void> {
  const specifier = './bench-webgpu.js'; // written separately; loaded only on request
  let mod: WebgpuModule;
  try {
    mod = (await import(specifier)) as WebgpuModule;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND') throw new Error('bench: the WebGPU benchmark (src/cli/bench-webgpu.ts) is not part of this build');
    throw e;
  }
  const optimizers = o.optimizers.flatMap((r) => o.bits.map((b) => CLASSES[r]?.[b === 8 ? 0 : 1] ?? r));
  const result = await mod.benchWebgpu({ sizes: o.sizes, optimizers, iters: o.iterations, json: o.json, log: (s) => process.stderr.write(s + '\n') });
  if (mod.formatWebgpuTable) process.stdout.write(mod.formatWebgpuTable(result) + '\n');
}
