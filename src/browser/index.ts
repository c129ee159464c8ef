/**
 * The browser entry, `import … from 'bitopt/browser'`: the framework-free core (optimizer
 * classes, quantization, state dicts), the WebAssembly CPU kernels (single-threaded in a tab;
 * they need a cross-origin-isolated page for SharedArrayBuffer, else the reference loop runs),
 * and the WebGPU optimizer with adapters from `navigator.gpu`. Nothing here imports Node
 * built-ins or the `webgpu` npm package (packages/demo/test/browser-e2e.test.ts bundles it to
 * check).
 */
export * from '../index.js';
export { createDefaultCpuKernel } from '../kernels/cpu/default.js';
export { createWasmKernel, type WasmKernel, type WasmKernelOptions } from '../kernels/cpu/wasm-kernel.js';
export { wasmKernelsSupported } from '../kernels/cpu/wasm-runtime.js';
export { createGpuTensor, gpuTensorBytes, readGpuTensor, requestWebgpuDevice, writeGpuTensor, type GpuTensor } from '../kernels/webgpu/device.js';
export {
  createWebgpuOptimizer,
  WebgpuOptimizer,
  type GpuParamGroup,
  type OptimizerClass,
  type WebgpuEngineOptions,
} from '../kernels/webgpu/optimizer.js';
export { adapterName, requestBrowserWebgpu, type BrowserWebgpu } from './webgpu.js';
