/**
 * The WebGPU backend: fused WGSL optimizer kernels over GPU-resident tensors. Works with any
 * GPUDevice (browser `navigator.gpu`, or Node's `webgpu` package); ./node.ts has the Node helper.
 */
export {
  createGpuTensor,
  gpuTensorBytes,
  readGpuTensor,
  requestWebgpuDevice,
  writeGpuTensor,
  type GpuTensor,
} from './device.js';
export { createWebgpuOptimizer, WebgpuOptimizer, type GpuParamGroup, type OptimizerClass, type WebgpuEngineOptions } from './optimizer.js';
export { dequantizeBlockwiseGpu, quantizeBlockwiseGpu, readQuantized, type GpuQuantized, type GpuQuantizeOptions } from './quantize.js';
