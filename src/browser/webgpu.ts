/**
 * WebGPU in a browser tab: the adapter comes from `navigator.gpu` (no `webgpu` npm package, no
 * Node). Returns null where the browser has no WebGPU or no adapter, so callers can fall back
 * to the CPU kernels.
 */
/// <reference types="@webgpu/types" />
import { requestWebgpuDevice } from '../kernels/webgpu/device.js';

/** What `requestBrowserWebgpu` returns. */
export interface BrowserWebgpu {
  /** The adapter from `navigator.gpu.requestAdapter`. */
  adapter: GPUAdapter;
  /** A device with the adapter's full limits. */
  device: GPUDevice;
  /** e.g. "google swiftshader" or "nvidia ampere": vendor and architecture or description. */
  adapterName: string;
}

/** A readable name for an adapter from its GPUAdapterInfo (fields vary between browsers). */
export function adapterName(adapter: GPUAdapter): string {
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  if (!info) return 'unknown adapter';
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => typeof s === 'string' && s.length > 0);
  return parts.length > 0 ? [...new Set(parts)].join(' ') : 'unknown adapter';
}

/**
 * An adapter and a device with the adapter's full limits (the WebGPU defaults cap a storage
 * binding at 128 MiB), or null without WebGPU. Pass `gpu` to use another GPU object.
 */
export async function requestBrowserWebgpu(
  options: GPURequestAdapterOptions = { powerPreference: 'high-performance' },
  gpu: GPU | undefined = (globalThis.navigator as Navigator | undefined)?.gpu,
): Promise<BrowserWebgpu | null> {
  if (!gpu) return null;
  const adapter = await gpu.requestAdapter(options);
  if (!adapter) return null;
  const device = await requestWebgpuDevice(adapter);
  return { adapter, device, adapterName: adapterName(adapter) };
}
