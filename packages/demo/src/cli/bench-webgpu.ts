/**
 * `bitopt bench --backend webgpu`: ms per optimizer step on the GPU (timestamp queries when the
 * adapter has them, else many steps and onSubmittedWorkDone), the bandwidth that implies at the
 * bytes a step must move, and the ratio to a plain copy kernel's bandwidth (256 threads, one
 * vec4 per thread, 20 dispatches in one compute pass) measured on the same device.
 */
/// <reference types="@webgpu/types" />
import { writeFileSync } from 'node:fs';
import * as classes from 'bitopt';
import { createGpuTensor, createWebgpuOptimizer, type GpuTensor, type OptimizerClass, type WebgpuEngineOptions } from 'bitopt';
import { requestNodeDevice } from 'bitopt/node';

export interface BenchWebgpuOptions {
  /** Parameter counts (default 4M, 64M, 256M). */
  sizes?: number[];
  /** Class names, e.g. ['Adam8bit', 'Adam'] (default: every rule 8- and 32-bit, and Adam4bit; any *4bit class may be named). */
  optimizers?: string[];
  /** Timed steps per row (default 30). */
  iters?: number;
  /** Write the rows as JSON here. */
  json?: string;
  /** Engine options: most workgroups per dispatch, vec4s per thread per tile. */
  maxWorkgroups?: number;
  unroll?: number;
  /** 8-bit: pairs of vec4s per thread (engine option `pairs`). */
  pairs?: boolean;
  /** 8-bit: the exact encode tables (engine option `exactEncode`). */
  exactEncode?: boolean;
  /** Print progress lines. */
  log?: (line: string) => void;
}

export interface BenchWebgpuRow {
  optimizer: string;
  params: number;
  msPerStep: number;
  /** Host clock over the pipelined steps (includes encoding and submit). */
  wallMsPerStep: number;
  bytesPerParam: number;
  gbPerS: number;
  ofCopy: number;
}

export interface BenchWebgpuResult {
  adapter: string;
  timing: 'timestamp-query' | 'wall-clock';
  /** Copy-kernel GB/s per size (parameters -> GB/s). */
  copyGbPerS: Record<number, number>;
  rows: BenchWebgpuRow[];
}

const M = 1 << 20;
const DEFAULT_OPTIMIZERS = [
  'Adam8bit', 'Adam', 'SGD8bit', 'SGD', 'RMSprop8bit', 'RMSprop', 'Adagrad8bit', 'Adagrad',
  'Lion8bit', 'Lion', 'AdEMAMix8bit', 'AdEMAMix', 'LAMB8bit', 'LAMB', 'LARS8bit', 'LARS', 'Adam4bit',
];
const KNOWN = [...DEFAULT_OPTIMIZERS, ...['SGD', 'RMSprop', 'Adagrad', 'Lion', 'AdEMAMix', 'LAMB', 'LARS', 'AdamW', 'RAdam'].map((r) => `${r}4bit`)];

/** Bytes a step must move per parameter: p read+write, g read, each state read+write (plus LAMB/LARS's norm pass). */
function bytesPerParam(opt: { rule: { states: readonly unknown[]; usesTrustRatio?: boolean } }, bits: number): number {
  const S = opt.rule.states.length;
  const stateBytes = bits / 8;
  let b = 12 + 2 * S * stateBytes;
  if (opt.rule.usesTrustRatio) b += 8 + S * stateBytes;
  return b;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Random (not zero) contents: a 1M-value pattern written repeatedly. */
function fillRandom(device: GPUDevice, t: GpuTensor, seed: number, scale: number): void {
  const pattern = new Float32Array(M);
  let a = seed;
  for (let i = 0; i < M; i++) {
    a = (a * 1664525 + 1013904223) >>> 0;
    pattern[i] = ((a / 4294967296) - 0.5) * scale;
  }
  const bytes = t.buffer.size;
  for (let off = 0; off < bytes; off += pattern.byteLength) {
    device.queue.writeBuffer(t.buffer, off, pattern.buffer, 0, Math.min(pattern.byteLength, bytes - off));
  }
}

class GpuTimer {
  private readonly qs: GPUQuerySet | null;
  private readonly resolveBuf: GPUBuffer | null;
  private readonly readBuf: GPUBuffer | null;
  constructor(private readonly device: GPUDevice, private readonly count: number) {
    const ts = device.features.has('timestamp-query');
    this.qs = ts ? device.createQuerySet({ type: 'timestamp', count: 2 * count }) : null;
    this.resolveBuf = ts ? device.createBuffer({ size: 16 * count, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }) : null;
    this.readBuf = ts ? device.createBuffer({ size: 16 * count, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }) : null;
  }
  get timestamps(): boolean {
    return this.qs !== null;
  }
  writes(i: number): GPUComputePassTimestampWrites | undefined {
    return this.qs ? { querySet: this.qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } : undefined;
  }
  /** Median ms of passes 0..count-1 (timestamps), or null without them. */
  async medianMs(): Promise<number | null> {
    if (!this.qs) return null;
    const enc = this.device.createCommandEncoder();
    enc.resolveQuerySet(this.qs, 0, 2 * this.count, this.resolveBuf!, 0);
    enc.copyBufferToBuffer(this.resolveBuf!, 0, this.readBuf!, 0, 16 * this.count);
    this.device.queue.submit([enc.finish()]);
    await this.readBuf!.mapAsync(GPUMapMode.READ);
    const t = new BigInt64Array(this.readBuf!.getMappedRange().slice(0));
    this.readBuf!.unmap();
    const ms: number[] = [];
    for (let i = 0; i < this.count; i++) ms.push(Number(t[2 * i + 1] - t[2 * i]) / 1e6);
    return median(ms);
  }
  destroy(): void {
    this.qs?.destroy();
    this.resolveBuf?.destroy();
    this.readBuf?.destroy();
  }
}

const COPY_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < arrayLength(&dst)) { dst[i] = src[i]; }
}`;

/** GB/s of a vec4 copy of `n` floats (bytes read + written), 20 dispatches in one pass. */
async function copyBandwidth(device: GPUDevice, n: number, reps: number): Promise<number> {
  const usage = GPUBufferUsage.STORAGE;
  const src = device.createBuffer({ size: n * 4, usage: usage | GPUBufferUsage.COPY_DST });
  const dst = device.createBuffer({ size: n * 4, usage });
  fillRandom(device, { buffer: src, length: n }, 1, 1);
  const module = device.createShaderModule({ code: COPY_WGSL });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: src } }, { binding: 1, resource: { buffer: dst } }] });
  const groups = n / 4 / 256;
  const x = Math.min(groups, 32768);
  const y = Math.ceil(groups / x);
  const timer = new GpuTimer(device, reps);
  const run = async (i: number) => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass(timer.writes(i) ? { timestampWrites: timer.writes(i)! } : {});
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bg);
    for (let d = 0; d < 20; d++) pass.dispatchWorkgroups(x, y);
    pass.end();
    device.queue.submit([enc.finish()]);
  };
  await run(0);
  await device.queue.onSubmittedWorkDone();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await run(i);
  await device.queue.onSubmittedWorkDone();
  const wall = (performance.now() - t0) / reps;
  const ms = (await timer.medianMs()) ?? wall;
  timer.destroy();
  src.destroy();
  dst.destroy();
  return (20 * 2 * n * 4) / (ms / 1e3) / 1e9;
}

export async function benchWebgpu(options: BenchWebgpuOptions = {}): Promise<BenchWebgpuResult> {
  const sizes = options.sizes ?? [4 * M, 64 * M, 256 * M];
  const names = options.optimizers ?? DEFAULT_OPTIMIZERS;
  const iters = options.iters ?? 30;
  const log = options.log ?? (() => {});
  const table = classes as unknown as Record<string, OptimizerClass<object>>;
  for (const n of names) if (!KNOWN.includes(n) || typeof table[n] !== 'function') throw new Error(`bench webgpu: unknown optimizer '${n}' (known: ${KNOWN.join(', ')})`);
  const gpu = await requestNodeDevice();
  if (!gpu) throw new Error('bench webgpu: no WebGPU adapter');
  const { adapter, device } = gpu;
  const info = adapter.info;
  const adapterName = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
  log(`adapter: ${adapterName}; timestamp-query: ${device.features.has('timestamp-query')}; subgroups: ${device.features.has('subgroups')}`);
  const rows: BenchWebgpuRow[] = [];
  const copy: Record<number, number> = {};
  for (const size of sizes) {
    // The ceiling at this size: a copy of `size` floats (capped to one binding).
    const copyN = Math.min(size, Math.floor(device.limits.maxStorageBufferBindingSize / 4 / 1024) * 1024);
    const copyGbPerS = (copy[size] = await copyBandwidth(device, copyN, 10));
    log(`copy: ${copyGbPerS.toFixed(0)} GB/s over ${copyN} floats`);
    const param = createGpuTensor(device, size);
    const grad = createGpuTensor(device, size);
    log(`uploading ${size} random parameters and gradients`);
    fillRandom(device, param, 7, 2);
    fillRandom(device, grad, 9, 2e-3);
    // Let the uploads finish (and Dawn free their staging memory) before anything is timed.
    await device.queue.onSubmittedWorkDone();
    // One discarded row first: right after the uploads, the first optimizer's steps ran up to 4x
    // slower on an H100 at 256M for about a second (seen every time, whatever the rule).
    log('warm-up row (discarded):');
    await benchRow(device, table[names[0]], names[0], size, param, grad, iters, { maxWorkgroups: options.maxWorkgroups, unroll: options.unroll, pairs: options.pairs, exactEncode: options.exactEncode }, copyGbPerS, log).catch(() => {});
    for (const name of names) {
      try {
        rows.push(await benchRow(device, table[name], name, size, param, grad, iters, { maxWorkgroups: options.maxWorkgroups, unroll: options.unroll, pairs: options.pairs, exactEncode: options.exactEncode }, copyGbPerS, log));
      } catch (e) {
        log(`${name} ${size / M}M: failed: ${(e as Error).message}`);
      }
    }
    param.buffer.destroy();
    grad.buffer.destroy();
  }
  const result: BenchWebgpuResult = { adapter: adapterName, timing: device.features.has('timestamp-query') ? 'timestamp-query' : 'wall-clock', copyGbPerS: copy, rows };
  if (options.json) writeFileSync(options.json, JSON.stringify(result, null, 2));
  device.destroy();
  return result;
}

async function benchRow(
  device: GPUDevice,
  cls: OptimizerClass<object>,
  name: string,
  size: number,
  param: GpuTensor,
  grad: GpuTensor,
  iters: number,
  engine: WebgpuEngineOptions,
  copyGbPerS: number,
  log: (l: string) => void,
): Promise<BenchWebgpuRow> {
  const bits = name.endsWith('8bit') ? 8 : name.endsWith('4bit') ? 4 : 32;
  // A speed run: rules whose 4-bit states lose parity (docs/quality-4bit.md) are timed through the opt-in.
  const options = { ...(name.startsWith('SGD') || name.startsWith('LARS') ? { momentum: 0.9 } : {}), ...(bits === 4 ? { allow4bitWithoutParity: true } : {}) };
  const opt = createWebgpuOptimizer(device, cls, [param], options, engine);
  const timer = new GpuTimer(device, iters);
  // Warm up for at least 5 steps and 300 ms: an idle GPU runs the first steps several times slower.
  const warm = performance.now();
  for (let i = 0; i < 5 || performance.now() - warm < 300; i++) {
    await opt.step([grad]);
    await opt.sync();
  }
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) await opt.step([grad], { timestampWrites: timer.writes(i) });
  await opt.sync();
  const wall = (performance.now() - t0) / iters;
  const ms = (await timer.medianMs()) ?? wall;
  const bpp = bytesPerParam(opt, bits);
  const gbPerS = (bpp * size) / (ms / 1e3) / 1e9;
  const row = { optimizer: name, params: size, msPerStep: ms, wallMsPerStep: wall, bytesPerParam: bpp, gbPerS, ofCopy: gbPerS / copyGbPerS };
  log(`${name.padEnd(13)} ${String(size / M).padStart(4)}M  ${ms.toFixed(3).padStart(8)} ms (wall ${wall.toFixed(3)})  ${String(bpp).padStart(3)} B/param  ${gbPerS.toFixed(0).padStart(5)} GB/s  ${(row.ofCopy * 100).toFixed(0).padStart(3)}% of copy`);
  timer.destroy();
  opt.destroy();
  return row;
}

/** Markdown table of a result. */
export function formatWebgpuTable(r: BenchWebgpuResult): string {
  const lines = [
    `WebGPU adapter: ${r.adapter}; per-step time: ${r.timing === 'timestamp-query' ? 'median of GPU timestamps' : 'host clock (no timestamp-query)'}`,
    '',
    `| optimizer | params | ms/step (GPU) | ms/step (wall) | B/param | GB/s | % of copy |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const [n, gb] of Object.entries(r.copyGbPerS)) lines.push(`| copy (ceiling) | ${Number(n) / M}M | | | 8 | ${gb.toFixed(0)} | 100% |`);
  for (const x of r.rows) {
    lines.push(`| ${x.optimizer} | ${x.params / M}M | ${x.msPerStep.toFixed(3)} | ${x.wallMsPerStep.toFixed(3)} | ${x.bytesPerParam} | ${x.gbPerS.toFixed(0)} | ${(x.ofCopy * 100).toFixed(0)}% |`);
  }
  return lines.join('\n');
}
