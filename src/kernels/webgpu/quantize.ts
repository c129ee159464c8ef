/**
 * Block-wise quantize / dequantize of a GPU tensor with any 256-value map (docs/architecture.md §1.2), the
 * GPU twins of quantizeBlockwise / dequantizeBlockwise. Codes are packed 4 per u32 (byte i of
 * word w is element 4w+i), one float32 absmax per block. The nearest code is found by binary
 * search over the map in workgroup memory (ties go low, as in the reference); these kernels
 * are not on the optimizer's hot path, which uses the fused kernels of ./template.ts.
 */
/// <reference types="@webgpu/types" />
import { validateBlockSize } from '../../quant/blockwise.js';
import { validateMap } from '../../quant/maps.js';
import { gpuTensorBytes, readBuffer, scoped, writeBytes, type GpuTensor } from './device.js';
import { chunkRange, planLayout, type TensorLayout } from './layout.js';

/** A block-wise 8-bit quantized tensor on the GPU (`quantizeBlockwiseGpu`). */
export interface GpuQuantized {
  /** Packed codes: ceil(length / blockSize) blocks of blockSize/4 words. */
  codes: GPUBuffer;
  /** One float32 per block. */
  absmax: GPUBuffer;
  /** Elements quantized. */
  length: number;
  /** Elements per block. */
  blockSize: number;
}

/** Options of `quantizeBlockwiseGpu`. */
export interface GpuQuantizeOptions {
  /** The quantization map (256 sorted float32 values), e.g. `createDynamicMap(true)`. */
  map: Float32Array;
  /** Elements per block: a power of two in [64, 4096]. Default 2048. */
  blockSize?: number;
  /** Largest storage binding to use (tests lower it to force chunking). */
  maxBindingBytes?: number;
}

const WG = 256;

function kernel(blockSize: number, pass: 'quantize' | 'dequantize'): string {
  const tile = Math.max(blockSize, 1024);
  const R = tile / 1024;
  const BPT = tile / blockSize;
  const rs = [...Array(R).keys()];
  const head = `
struct U { n: u32, numTiles: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, ${pass === 'quantize' ? 'read' : 'read_write'}> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, ${pass === 'quantize' ? 'read_write' : 'read'}> codes: array<u32>;
@group(0) @binding(3) var<storage, ${pass === 'quantize' ? 'read_write' : 'read'}> absmax: array<f32>;
@group(0) @binding(4) var<storage, read> mapIn: array<f32>;
var<workgroup> qmap: array<f32, 256>;
var<workgroup> red: array<atomic<u32>, ${BPT}>;
fn nearest(v: f32) -> u32 {
  if (!(v > qmap[0])) { return 0u; }
  if (v >= qmap[255]) { return 255u; }
  var lo = 0u;
  var hi = 255u;
  for (var k = 0u; k < 8u; k++) {
    let mid = (lo + hi) >> 1u;
    let up = qmap[mid] <= v;
    lo = select(lo, mid, up);
    hi = select(mid, hi, up);
  }
  return select(hi, lo, v - qmap[lo] <= qmap[hi] - v);
}`;
  const lines = (f: (r: number) => string) => rs.map(f).join('\n');
  const body =
    pass === 'quantize'
      ? `
${lines((r) => `    let e${r} = ${r * 1024}u + 4u * lid;
    let v${r} = tile * ${tile / 4}u + ${r * 256}u + lid;
    let idx${r} = vec4<u32>(v${r} * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
    var x${r} = vec4<f32>(0.0);
    if (v${r} < nV4) { x${r} = select(x[v${r}], vec4<f32>(0.0), idx${r} >= vec4<u32>(u.n)); }
    let a${r} = abs(x${r});
    atomicMax(&red[e${r} / ${blockSize}u], bitcast<u32>(max(max(a${r}.x, a${r}.y), max(a${r}.z, a${r}.w))));`)}
    workgroupBarrier();
${lines((r) => `    {
      let am = bitcast<f32>(atomicLoad(&red[e${r} / ${blockSize}u]));
      let blk = tile * ${BPT}u + e${r} / ${blockSize}u;
      if (e${r} % ${blockSize}u == 0u) { absmax[blk] = am; }
      var w = 0u;
      for (var i = 0u; i < 4u; i++) {
        // An all-zero block stores the code of the map value nearest 0.
        let q = select(x${r}[i] / am, 0.0, am == 0.0);
        w |= nearest(q) << (8u * i);
      }
      codes[blk * ${blockSize / 4}u + (e${r} % ${blockSize}u) / 4u] = w;
    }`)}
    workgroupBarrier();
    if (lid < ${BPT}u) { atomicStore(&red[lid], 0u); }
    workgroupBarrier();`
      : `
${lines((r) => `    {
      let e = ${r * 1024}u + 4u * lid;
      let v = tile * ${tile / 4}u + ${r * 256}u + lid;
      let blk = tile * ${BPT}u + e / ${blockSize}u;
      let w = codes[blk * ${blockSize / 4}u + (e % ${blockSize}u) / 4u];
      let am = absmax[blk];
      if (v < nV4) {
        x[v] = vec4<f32>(qmap[w & 255u], qmap[(w >> 8u) & 255u], qmap[(w >> 16u) & 255u], qmap[w >> 24u]) * am;
      }
    }`)}`;
  return `${head}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid3: vec3<u32>, @builtin(num_workgroups) nwg3: vec3<u32>) {
  let lid = lid3.x;
  qmap[lid] = mapIn[lid];
  workgroupBarrier();
  let nV4 = (u.n + 3u) / 4u;
  for (var tile = wid3.x; tile < u.numTiles; tile += nwg3.x) {
${body}
  }
}`;
}

const pipelines = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

function pipelineFor(device: GPUDevice, blockSize: number, pass: 'quantize' | 'dequantize'): GPUComputePipeline {
  let m = pipelines.get(device);
  if (!m) pipelines.set(device, (m = new Map()));
  const key = `${pass}|${blockSize}`;
  let p = m.get(key);
  if (!p) {
    const module = device.createShaderModule({ code: kernel(blockSize, pass), label: key });
    p = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: key });
    m.set(key, p);
  }
  return p;
}

function layoutFor(device: GPUDevice, length: number, blockSize: number, maxBindingBytes?: number): TensorLayout {
  const limit = Math.min(maxBindingBytes ?? Infinity, device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  return planLayout({ bits: 8, blockSize, states: ['signed'], subgroups: false }, length, limit, device.limits.minStorageBufferOffsetAlignment, 2112);
}

function run(
  device: GPUDevice,
  who: string,
  pass: 'quantize' | 'dequantize',
  l: TensorLayout,
  x: GPUBuffer,
  q: { codes: GPUBuffer; absmax: GPUBuffer },
  map: Float32Array,
): Promise<void> {
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
  const mapBuf = device.createBuffer({ size: 1024, usage });
  writeBytes(device, mapBuf, 0, map);
  const uniforms = device.createBuffer({ size: 256 * l.chunks.length, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const u = new Uint32Array(64 * l.chunks.length);
  l.chunks.forEach((c, i) => u.set([c.n, c.tiles], 64 * i));
  writeBytes(device, uniforms, 0, u);
  const done = scoped(device, who, () => {
    const pipeline = pipelineFor(device, l.shape.blockSize, pass);
    const enc = device.createCommandEncoder();
    const cp = enc.beginComputePass();
    cp.setPipeline(pipeline);
    const xBytes = gpuTensorBytes(l.length);
    l.chunks.forEach((c, i) => {
      const bg = device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: uniforms, offset: 256 * i, size: 8 } },
          { binding: 1, resource: { buffer: x, ...chunkRange(c, l.paramTileBytes, xBytes) } },
          { binding: 2, resource: { buffer: q.codes, ...chunkRange(c, l.stateTileBytes, q.codes.size) } },
          { binding: 3, resource: { buffer: q.absmax, ...chunkRange(c, l.absmaxTileBytes, q.absmax.size) } },
          { binding: 4, resource: { buffer: mapBuf } },
        ],
      });
      cp.setBindGroup(0, bg);
      cp.dispatchWorkgroups(c.workgroups);
    });
    cp.end();
    device.queue.submit([enc.finish()]);
  });
  return done.finally(() => {
    mapBuf.destroy();
    uniforms.destroy();
  });
}

function checkTensor(t: GpuTensor, who: string): void {
  if (!t || typeof t !== 'object' || !('buffer' in t) || !Number.isSafeInteger(t.length) || t.length < 0) throw new Error(`${who}: expected a GPU tensor { buffer, length }`);
  if (t.buffer.size < gpuTensorBytes(t.length)) throw new Error(`${who}: the buffer has ${t.buffer.size} bytes, ${t.length} elements need ${gpuTensorBytes(t.length)}`);
}

/** Quantizes `x` block-wise on the GPU (finite inputs). Resolves when WebGPU reports no error. */
export async function quantizeBlockwiseGpu(device: GPUDevice, x: GpuTensor, options: GpuQuantizeOptions): Promise<GpuQuantized> {
  const who = 'quantizeBlockwiseGpu';
  checkTensor(x, who);
  const { map, blockSize = 2048 } = options ?? ({} as GpuQuantizeOptions);
  validateMap(map, `${who}: map`);
  validateBlockSize(blockSize, `${who}: blockSize`);
  const l = layoutFor(device, x.length, blockSize, options.maxBindingBytes);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const codes = device.createBuffer({ size: l.tiles * l.stateTileBytes, usage });
  const absmax = device.createBuffer({ size: Math.max(16, l.tiles * l.absmaxTileBytes), usage });
  await run(device, who, 'quantize', l, x.buffer, { codes, absmax }, map);
  return { codes, absmax, length: x.length, blockSize };
}

/** map[code] * absmax[block] for every element, into `out` (a new GPU tensor when omitted). */
export async function dequantizeBlockwiseGpu(device: GPUDevice, q: GpuQuantized, map: Float32Array, out?: GpuTensor): Promise<GpuTensor> {
  const who = 'dequantizeBlockwiseGpu';
  validateMap(map, `${who}: map`);
  validateBlockSize(q?.blockSize, `${who}: blockSize`);
  const target = out ?? { buffer: device.createBuffer({ size: gpuTensorBytes(q.length), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST }), length: q.length };
  checkTensor(target, who);
  if (target.length !== q.length) throw new Error(`${who}: out has ${target.length} elements, the codes ${q.length}`);
  const l = layoutFor(device, q.length, q.blockSize);
  await run(device, who, 'dequantize', l, target.buffer, q, map);
  return target;
}

/** Reads quantized data back in the CPU format of quantizeBlockwise. */
export async function readQuantized(device: GPUDevice, q: GpuQuantized): Promise<{ codes: Uint8Array; absmax: Float32Array }> {
  const blocks = Math.ceil(q.length / q.blockSize);
  const codes = new Uint8Array(await readBuffer(device, q.codes, q.length));
  const absmax = new Float32Array(await readBuffer(device, q.absmax, blocks * 4));
  return { codes, absmax };
}
