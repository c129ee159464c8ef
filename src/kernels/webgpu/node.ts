/**
 * WebGPU in Node through the `webgpu` package (Dawn). The object `create()` returns must stay
 * referenced while any of its devices lives (else Dawn crashes the process later, DESIGN §4),
 * so it is kept in a module-level variable.
 */
/// <reference types="@webgpu/types" />
import { requestWebgpuDevice } from './device.js';

let nodeGpu: GPU | undefined;

/** The Node `GPU` object (navigator.gpu equivalent); loads the `webgpu` package on first use. */
export async function nodeGpuInstance(): Promise<GPU> {
  if (nodeGpu) return nodeGpu;
  const mod = (await import('webgpu')) as unknown as { create(o: string[]): GPU; globals: object };
  Object.assign(globalThis, mod.globals);
  // Full-resolution GPU timestamps (Dawn quantizes them by default).
  nodeGpu = mod.create(['disable-dawn-features=timestamp_quantization']);
  return nodeGpu;
}

/** An adapter and a device with the adapter's real limits, or null when no adapter exists. */
export async function requestNodeDevice(): Promise<{ adapter: GPUAdapter; device: GPUDevice } | null> {
  const gpu = await nodeGpuInstance();
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return null;
  return { adapter, device: await requestWebgpuDevice(adapter) };
}
