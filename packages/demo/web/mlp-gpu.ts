/**
 * The MLP's forward and backward pass in WGSL: parameters, gradients and activations stay on
 * the GPU; per step only the batch goes up and 2 × batch floats (loss, hit) come back. The
 * gradients are GpuTensors that bitopt's WebGPU optimizer reads directly.
 */
/// <reference types="@webgpu/types" />
import { createGpuTensor, readGpuTensor, type GpuTensor } from 'bitopt/browser';

const TILE = 8;

/**
 * C[M×N] = op(A)·op(B); mode 1: + bias, ReLU; 2: + bias; 3: zero where aux (activation) <= 0.
 * One invocation per output element and no workgroup memory: SwiftShader (the CPU Vulkan of
 * headless Chromium) runs workgroup barriers as coroutine switches, which made a tiled
 * version several times slower there.
 */
const MATMUL = /* wgsl */ `
struct Dims { M: u32, N: u32, K: u32, transA: u32, transB: u32, mode: u32, p0: u32, p1: u32 }
@group(0) @binding(0) var<uniform> d: Dims;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read> aux: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<f32>;
@compute @workgroup_size(${TILE}, ${TILE})
fn main(@builtin(global_invocation_id) g: vec3u) {
  // Each invocation computes 4 neighbouring columns: a quarter of the A loads and loop steps.
  let row = g.y;
  let col = g.x * 4u;
  if (row >= d.M || col >= d.N) { return; }
  // element (m, k) of op(A) is A[m*sa + k*ta]; (k, n) of op(B) is B[k*sb + n*tb]
  var sa = d.K; var ta = 1u;
  if (d.transA == 1u) { sa = 1u; ta = d.M; }
  var sb = d.N; var tb = 1u;
  if (d.transB == 1u) { sb = 1u; tb = d.K; }
  let cols = min(4u, d.N - col);
  // Columns past N re-read column col (in bounds) and are never stored.
  let c1 = select(0u, 1u, cols > 1u) * tb;
  let c2 = select(0u, 2u, cols > 2u) * tb;
  let c3 = select(0u, 3u, cols > 3u) * tb;
  var acc = vec4f(0.0);
  var ia = row * sa;
  var ib = col * tb;
  for (var k = 0u; k < d.K; k++) {
    acc += A[ia] * vec4f(B[ib], B[ib + c1], B[ib + c2], B[ib + c3]);
    ia += ta;
    ib += sb;
  }
  for (var j = 0u; j < cols; j++) {
    let i = row * d.N + col + j;
    var v = acc[j];
    if (d.mode == 1u || d.mode == 2u) { v += aux[col + j]; }
    if (d.mode == 1u) { v = max(v, 0.0); }
    if (d.mode == 3u && aux[i] <= 0.0) { v = 0.0; }
    C[i] = v;
  }
}`;

/** Per row: softmax cross-entropy, its gradient (divided by rows), and whether argmax hits. */
const XENT = /* wgsl */ `
struct Dims { rows: u32, classes: u32, p0: u32, p1: u32 }
@group(0) @binding(0) var<uniform> d: Dims;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let r = g.x;
  if (r >= d.rows) { return; }
  let o = r * d.classes;
  var mx = logits[o];
  var arg = 0u;
  for (var j = 1u; j < d.classes; j++) { if (logits[o + j] > mx) { mx = logits[o + j]; arg = j; } }
  var s = 0.0;
  for (var j = 0u; j < d.classes; j++) { s += exp(logits[o + j] - mx); }
  let y = labels[r];
  for (var j = 0u; j < d.classes; j++) {
    dlogits[o + j] = (exp(logits[o + j] - mx) / s - select(0.0, 1.0, j == y)) / f32(d.rows);
  }
  stats[r] = mx + log(s) - logits[o + y];
  stats[d.rows + r] = select(0.0, 1.0, arg == y);
}`;

/** gb[j] = Σ_r D[r, j]. */
const BIAS_GRAD = /* wgsl */ `
struct Dims { rows: u32, cols: u32, p0: u32, p1: u32 }
@group(0) @binding(0) var<uniform> d: Dims;
@group(0) @binding(1) var<storage, read> D: array<f32>;
@group(0) @binding(2) var<storage, read_write> gb: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let j = g.x;
  if (j >= d.cols) { return; }
  var s = 0.0;
  for (var r = 0u; r < d.rows; r++) { s += D[r * d.cols + j]; }
  gb[j] = s;
}`;

interface Dispatch {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups: [number, number];
}

export interface GpuStepTiming {
  lossSum: number;
  correct: number;
}

export class GpuMlp {
  readonly params: GpuTensor[];
  readonly grads: GpuTensor[];
  private readonly x: GPUBuffer;
  private readonly labels: GPUBuffer;
  private readonly stats: GPUBuffer;
  private readonly staging: GPUBuffer;
  private readonly dispatches: Dispatch[] = [];
  private readonly owned: GPUBuffer[] = [];

  constructor(
    readonly device: GPUDevice,
    readonly sizes: number[],
    readonly rows: number,
    initial: Float32Array[],
  ) {
    const L = sizes.length - 1;
    const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const buffer = (bytes: number, usage = storage) => {
      const b = device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage });
      this.owned.push(b);
      return b;
    };
    this.params = initial.map((p) => createGpuTensor(device, p));
    this.grads = initial.map((p) => createGpuTensor(device, p.length));
    this.x = buffer(rows * sizes[0] * 4);
    this.labels = buffer(rows * 4);
    this.stats = buffer(2 * rows * 4);
    this.staging = buffer(2 * rows * 4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    const acts = sizes.slice(1).map((n) => buffer(rows * n * 4));
    const deltas = sizes.slice(1).map((n) => buffer(rows * n * 4));

    const pipeline = (code: string) => device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
    const matmul = pipeline(MATMUL);
    const xent = pipeline(XENT);
    const biasGrad = pipeline(BIAS_GRAD);
    const uniform = (values: number[]) => {
      const b = buffer(values.length * 4, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
      device.queue.writeBuffer(b, 0, new Uint32Array(values));
      return b;
    };
    const add = (p: GPUComputePipeline, buffers: GPUBuffer[], workgroups: [number, number]) => {
      const bindGroup = device.createBindGroup({
        layout: p.getBindGroupLayout(0),
        entries: buffers.map((b, binding) => ({ binding, resource: { buffer: b } })),
      });
      this.dispatches.push({ pipeline: p, bindGroup, workgroups });
    };
    const mm = (M: number, N: number, K: number, transA: number, transB: number, mode: number, a: GPUBuffer, b: GPUBuffer, aux: GPUBuffer, c: GPUBuffer) =>
      add(matmul, [uniform([M, N, K, transA, transB, mode, 0, 0]), a, b, aux, c], [Math.ceil(N / 4 / TILE), Math.ceil(M / TILE)]);

    // Forward: a_l = relu(a_{l-1} · W_l + b_l); logits without ReLU.
    for (let l = 0; l < L; l++) {
      const input = l === 0 ? this.x : acts[l - 1];
      mm(rows, sizes[l + 1], sizes[l], 0, 0, l + 1 < L ? 1 : 2, input, this.params[2 * l].buffer, this.params[2 * l + 1].buffer, acts[l]);
    }
    add(xent, [uniform([rows, sizes[L], 0, 0]), acts[L - 1], this.labels, deltas[L - 1], this.stats], [Math.ceil(rows / 64), 1]);
    // Backward: gW_l = a_{l-1}ᵀ · d_l; gb_l = Σ rows d_l; d_{l-1} = (d_l · W_lᵀ) ⊙ [a_{l-1} > 0].
    for (let l = L - 1; l >= 0; l--) {
      const input = l === 0 ? this.x : acts[l - 1];
      mm(sizes[l], sizes[l + 1], rows, 1, 0, 0, input, deltas[l], input, this.grads[2 * l].buffer);
      add(biasGrad, [uniform([rows, sizes[l + 1], 0, 0]), deltas[l], this.grads[2 * l + 1].buffer], [Math.ceil(sizes[l + 1] / 64), 1]);
      if (l > 0) mm(rows, sizes[l], sizes[l + 1], 0, 1, 3, deltas[l], this.params[2 * l].buffer, acts[l - 1], deltas[l - 1]);
    }
  }

  /**
   * Uploads the batch and encodes forward + backward (gradients land in `grads`). Resolves
   * when the GPU has finished; `readStats` then gives the batch's loss.
   */
  async lossAndGrads(x: Float32Array<ArrayBuffer>, labels: Uint32Array<ArrayBuffer>): Promise<void> {
    const { device } = this;
    device.queue.writeBuffer(this.x, 0, x);
    device.queue.writeBuffer(this.labels, 0, labels);
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (const d of this.dispatches) {
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1]);
    }
    pass.end();
    enc.copyBufferToBuffer(this.stats, 0, this.staging, 0, 2 * this.rows * 4);
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
  }

  /** Loss sum and hits of the last batch. */
  async readStats(): Promise<GpuStepTiming> {
    await this.staging.mapAsync(GPUMapMode.READ);
    const s = new Float32Array(this.staging.getMappedRange().slice(0));
    this.staging.unmap();
    let lossSum = 0;
    let correct = 0;
    for (let r = 0; r < this.rows; r++) {
      lossSum += s[r];
      correct += s[this.rows + r];
    }
    return { lossSum, correct };
  }

  readParams(): Promise<Float32Array[]> {
    return Promise.all(this.params.map((p) => readGpuTensor(this.device, p)));
  }

  readGrads(): Promise<Float32Array[]> {
    return Promise.all(this.grads.map((g) => readGpuTensor(this.device, g)));
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
    for (const t of [...this.params, ...this.grads]) t.buffer.destroy();
  }
}
