/**
 * The demo on a GPU: TensorFlow.js's `webgpu` backend, in Node through the `webgpu` package
 * (Dawn). The models, their gradients and tfjs's own Adam run there, and bitopt's optimizers
 * run through its TensorFlow.js adapter, whose engine runs bitopt's WGSL kernels on tfjs's own
 * GPU buffers (bitopt's src/tfjs/webgpu-engine.ts): the weights never leave the GPU.
 */
/// <reference types="@webgpu/types" />
import { tmpdir } from 'node:os';
import { nodeGpuInstance } from 'bitopt/node';
import { tf } from './tf.js';

/** The GPU the webgpu backend runs on, once `initWebgpuBackend` succeeded. */
let adapterName: string | undefined;

/** Name of the WebGPU adapter the demo runs on (undefined before `initWebgpuBackend`). */
export function webgpuAdapterName(): string | undefined {
  return adapterName;
}

/**
 * A readable adapter name from GPUAdapterInfo: the device ('NVIDIA H100 80GB HBM3', 'SwiftShader
 * Device (Subzero)'), then the driver's description when it adds something.
 */
export function describeAdapter(info: Partial<GPUAdapterInfo> | undefined): string {
  const device = info?.device?.trim() || [info?.vendor, info?.architecture].filter((s) => !!s).join(' ').trim();
  const description = info?.description?.trim();
  if (!device) return description || 'unnamed WebGPU adapter';
  return description && description !== device ? `${device} (${description})` : device;
}

const HOW_TO_GET_ONE =
  'WebGPU in Node needs a GPU with its Vulkan driver (or, without a GPU, SwiftShader: `apt-get install chromium libvulkan1`, then ' +
  'VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json, slow); --backend cpu works everywhere';

/**
 * Makes tfjs's `webgpu` backend the current one. Throws an Error whose message starts with
 * `--backend webgpu:` (the CLI prints it as a usage error) when the `webgpu` package does not
 * load, when no adapter is found, or when the tfjs backend does not start.
 */
export async function initWebgpuBackend(log: (line: string) => void = () => {}): Promise<string> {
  // Vulkan's window-system probing complains on stderr without it (a headless machine).
  process.env.XDG_RUNTIME_DIR ??= tmpdir();
  let gpu: GPU;
  try {
    // Keeps the Dawn instance in a module variable for the life of the process (Dawn crashes
    // the process if it is collected while a device lives, docs/architecture.md §5).
    gpu = await nodeGpuInstance();
  } catch (e) {
    throw new Error(`--backend webgpu: the 'webgpu' package (Dawn, WebGPU for Node) did not load (${(e as Error).message}); run \`npm install\`, or use --backend cpu`);
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error(`--backend webgpu: no WebGPU adapter found (Dawn found no Vulkan driver for a GPU). ${HOW_TO_GET_ONE}`);
  const legacy = adapter as GPUAdapter & { requestAdapterInfo?: () => Promise<GPUAdapterInfo> };
  const name = describeAdapter(adapter.info ?? (await legacy.requestAdapterInfo?.()));
  // tfjs-backend-webgpu finds the GPU as in a browser, through navigator.gpu (the same
  // instance, so it gets the same adapter: it also asks for 'high-performance').
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav && !nav.gpu) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
  else if (!nav) Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  try {
    await import('@tensorflow/tfjs-backend-webgpu');
  } catch (e) {
    throw new Error(`--backend webgpu: @tensorflow/tfjs-backend-webgpu did not load (${(e as Error).message}); run \`npm install\`, or use --backend cpu`);
  }
  if (!(await tf.setBackend('webgpu'))) throw new Error(`--backend webgpu: TensorFlow.js's webgpu backend did not start on '${name}'; use --backend cpu`);
  await tf.ready();
  adapterName = name;
  log(`WebGPU adapter: ${name}`);
  return name;
}
