/** Node-only helpers (file system; WebGPU through Dawn). The main entry 'bitopt' stays free of Node imports. */
export { loadStateDictFile, saveStateDictFile } from './checkpoint.js';
/** WebGPU in Node through the optional `webgpu` package (Dawn): the GPU object and a device with the adapter's limits. */
export { nodeGpuInstance, requestNodeDevice } from '../kernels/webgpu/node.js';
