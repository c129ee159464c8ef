/**
 * One training run = a model copy + one bitopt optimizer, on the GPU (WGSL model, WebGPU
 * optimizer, everything GPU-resident) or on the CPU (TypeScript model, CPU kernel).
 */
/// <reference types="@webgpu/types" />
import { createDefaultCpuKernel, createWebgpuOptimizer, type BaseOptions, type Optimizer, type WebgpuOptimizer } from 'bitopt/browser';
import type { Batch } from './data.js';
import { CpuMlp } from './mlp-cpu.js';
import { GpuMlp } from './mlp-gpu.js';
import { classFor, type Family } from './model.js';

export interface StepResult {
  loss: number;
  accuracy: number;
  /** Forward + backward (ms, waited for the GPU). */
  modelMs: number;
  /** Optimizer step (ms, waited for the GPU). */
  optimizerMs: number;
}

export interface Run {
  readonly label: string;
  readonly className: string;
  readonly bits: 4 | 8 | 32;
  /** Where the optimizer runs: 'webgpu', or the CPU kernel's name ('wasm-simd', 'reference'). */
  readonly kernel: string;
  step(batch: Batch): Promise<StepResult>;
  /** Bytes of optimizer state (codes + absmax + float32 states) after the first step. */
  stateBytes(): number;
  readParams(): Promise<Float32Array[]>;
  destroy(): void;
}

function makeOptions(f: Family, lr: number): BaseOptions {
  return { ...f.options, lr } as BaseOptions;
}

export class GpuRun implements Run {
  readonly className: string;
  readonly kernel = 'webgpu';
  private readonly model: GpuMlp;
  private readonly opt: WebgpuOptimizer;

  constructor(
    device: GPUDevice,
    readonly label: string,
    f: Family,
    readonly bits: 4 | 8 | 32,
    lr: number,
    sizes: number[],
    rows: number,
    initial: Float32Array[],
  ) {
    this.model = new GpuMlp(device, sizes, rows, initial);
    this.opt = createWebgpuOptimizer(device, classFor(f, bits), this.model.params, makeOptions(f, lr));
    this.className = this.opt.className;
  }

  async step(batch: Batch): Promise<StepResult> {
    const t0 = performance.now();
    await this.model.lossAndGrads(batch.x, Uint32Array.from(batch.labels));
    const t1 = performance.now();
    await this.opt.step(this.model.grads);
    await this.model.device.queue.onSubmittedWorkDone();
    const t2 = performance.now();
    const s = await this.model.readStats();
    return { loss: s.lossSum / batch.rows, accuracy: (100 * s.correct) / batch.rows, modelMs: t1 - t0, optimizerMs: t2 - t1 };
  }

  stateBytes(): number {
    return this.opt.stateBytes();
  }

  readParams(): Promise<Float32Array[]> {
    return this.model.readParams();
  }

  destroy(): void {
    this.opt.destroy();
    this.model.destroy();
  }
}

export class CpuRun implements Run {
  readonly className: string;
  readonly kernel: string;
  private readonly model: CpuMlp;
  private readonly params: Float32Array[];
  private readonly grads: Float32Array[];
  private readonly opt: Optimizer;

  constructor(
    readonly label: string,
    f: Family,
    readonly bits: 4 | 8 | 32,
    lr: number,
    sizes: number[],
    rows: number,
    initial: Float32Array[],
  ) {
    this.model = new CpuMlp(sizes, rows);
    this.params = initial.map((p) => p.slice());
    this.grads = initial.map((p) => new Float32Array(p.length));
    this.opt = new (classFor(f, bits))(this.params, makeOptions(f, lr));
    const kernel = createDefaultCpuKernel();
    this.opt.setKernel(kernel);
    this.kernel = kernel.name;
    this.className = this.opt.className;
  }

  async step(batch: Batch): Promise<StepResult> {
    const t0 = performance.now();
    const s = this.model.lossAndGrads(this.params, batch.x, batch.labels, batch.rows, this.grads);
    const t1 = performance.now();
    await this.opt.step(this.grads);
    const t2 = performance.now();
    return { loss: s.lossSum / batch.rows, accuracy: (100 * s.correct) / batch.rows, modelMs: t1 - t0, optimizerMs: t2 - t1 };
  }

  stateBytes(): number {
    return this.opt.stateBytes();
  }

  async readParams(): Promise<Float32Array[]> {
    return this.params;
  }

  destroy(): void {}
}
