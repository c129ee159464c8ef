/** CPU kernels: the reference loop (the specification) and the WebAssembly SIMD kernel. */
export { createReferenceKernel } from './reference.js';
export { createDefaultCpuKernel } from './default.js';
export {
  allocFloat32,
  createWasmKernel,
  isKernelMemory,
  wasmDequantizeBlockwise,
  wasmQuantizeBlockwise,
  type WasmKernel,
  type WasmKernelOptions,
} from './wasm-kernel.js';
export { wasmKernelsSupported } from './wasm-runtime.js';
