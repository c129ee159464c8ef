/**
 * WebGPU in Node through the `webgpu` package (Dawn). The object `create()` returns must stay
 * referenced while any of its devices lives (else Dawn crashes the process later, docs/architecture.md §5),
 * so it is kept in a module-level variable.
 */
/// <reference types="@webgpu/types" />
import { requestWebgpuDevice } from './device.js';

let nodeGpu: GPU | undefined;

/**
 * The Node `GPU` object (navigator.gpu equivalent); loads the `webgpu` package (an optional peer
 * dependency of bitopt) on first use, and throws an Error naming it when it is not installed.
 */
export async function nodeGpuInstance(): Promise<GPU> {
  if (nodeGpu) return nodeGpu;
  let mod: { create(o: string[]): GPU; globals: object };
  try {
    // A variable specifier keeps bundlers and type checkers from requiring the optional peer.
    const name = 'webgpu';
    mod = (await import(name)) as { create(o: string[]): GPU; globals: object };
  } catch (e) {
    throw new Error(`WebGPU in Node needs the optional peer dependency 'webgpu' (Dawn): run \`npm install webgpu\` (${(e as Error).message})`);
  }
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
