import './default-kernel.js';
export { createDynamicMap, createLinearMap, linspaceFloat32, MAP_SIZE, MAP_SIZE_4BIT, validateMap } from './quant/maps.js';
export {
  blockCount,
  dequantizeBlock,
  dequantizeBlockwise,
  MAX_BLOCK_SIZE,
  MIN_BLOCK_SIZE,
  nearestCode,
  quantizeBlock,
  quantizeBlockwise,
  type BlockwiseOptions,
  type QuantizedBlockwise,
  type StateNudge,
} from './quant/blockwise.js';
export * from './optim/classes.js';
export { Optimizer, type BaseOptions, type OptimizerIdentity, type ParamGroup, type Params } from './optim/optimizer.js';
export { FRAMEWORK_DEFAULTS } from './optim/options.js';
export type { Coefficients, Hyper, Parity4bit, StateSign, UpdateRule } from './optim/rule.js';
export { RULES } from './optim/rules/index.js';
export { Blockwise8State, Float32State, type StateFormat, type StateStore } from './optim/state.js';
/** The encoding rule an optimizer state of a given sign uses ('sign' or 'positive' nudge), for custom quantized states. */
export { stateNudge } from './optim/state.js';
/** The 4-bit state codec (docs/architecture.md §1.5): its store, its 16-value maps (`stateMap4(sign)`, shared: copy before changing) and its block helpers. */
export { Blockwise4State, blockwise4Codec, createZeroFreeLinearMap4, stateMap4, type Blockwise4Entry } from './codecs/index.js';
export type { BaseStateEntry, Blockwise8Entry, Float32Entry, StateCodec } from './codecs/index.js';
export { READABLE_STATE_DICT_VERSIONS, STATE_DICT_FORMAT, STATE_DICT_VERSION, type StateDict, type StateEntry, type TensorStateDict } from './optim/statedict.js';
export { deserializeStateDict, serializeStateDict, SERIALIZED_VERSION } from './io/serialize.js';
export type { CpuKernel, DirectionNorms, ReservedJob, UpdateJob } from './optim/kernel.js';
export { createReferenceKernel } from './kernels/cpu/reference.js';
/** Replaces the CPU kernel new optimizers get (returns the previous factory); the entry points register the WebAssembly kernel. */
export { setDefaultCpuKernelFactory } from './optim/kernel.js';
export {
  allocFloat32,
  createDefaultCpuKernel,
  createWasmKernel,
  isKernelMemory,
  wasmDequantizeBlockwise,
  wasmKernelsSupported,
  wasmQuantizeBlockwise,
  type WasmKernel,
  type WasmKernelOptions,
} from './kernels/cpu/index.js';
export {
  createGpuTensor,
  createWebgpuOptimizer,
  dequantizeBlockwiseGpu,
  gpuTensorBytes,
  quantizeBlockwiseGpu,
  readQuantized,
  readGpuTensor,
  requestWebgpuDevice,
  WebgpuOptimizer,
  writeGpuTensor,
  type GpuParamGroup,
  type GpuQuantized,
  type GpuQuantizeOptions,
  type GpuTensor,
  type WebgpuEngineOptions,
} from './kernels/webgpu/index.js';
export type { WebgpuStepPass } from './kernels/webgpu/optimizer.js';
/** An optimizer class as `createWebgpuOptimizer` takes it (`Adam8bit`, `Lion`, ...). */
export type { OptimizerClass } from './kernels/webgpu/index.js';
