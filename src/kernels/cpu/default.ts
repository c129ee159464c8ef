/**
 * The CPU kernel an optimizer uses unless `setKernel` says otherwise: the WebAssembly SIMD
 * kernel where WebAssembly SIMD and shared memory are available, else the reference loop.
 */
import type { CpuKernel } from '../../optim/kernel.js';
import { createReferenceKernel } from './reference.js';
import { wasmKernelsSupported } from './wasm-runtime.js';
import { createWasmKernel } from './wasm-kernel.js';

let supported: boolean | undefined;

/** The WebAssembly SIMD kernel (float32 precision) where it can run, else the reference kernel. */
export function createDefaultCpuKernel(): CpuKernel {
  supported ??= wasmKernelsSupported();
  if (supported) {
    try {
      return createWasmKernel();
    } catch {
      // e.g. the 4 GiB shared memory cannot be reserved (a tight virtual-memory limit)
      supported = false;
    }
  }
  return createReferenceKernel();
}
