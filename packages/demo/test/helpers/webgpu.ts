/**
 * The WebGPU test setup shared by the demo's GPU suites. CI has no GPU: SwiftShader (Debian's
 * chromium) gives Dawn a Vulkan adapter (docs/architecture.md §5), used unless the caller has
 * already chosen a Vulkan driver. `webgpuSkip()` initialises tfjs's webgpu backend and returns
 * the reason to skip when no adapter exists (any other failure is a real error and throws).
 */
import { existsSync } from 'node:fs';
import { initTf } from '../../src/demo/backend.js';

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && existsSync(SWIFTSHADER)) process.env.VK_ICD_FILENAMES = SWIFTSHADER;

export async function webgpuSkip(suite: string): Promise<string | false> {
  try {
    await initTf('webgpu');
    return false;
  } catch (e) {
    if (!/no WebGPU adapter found/.test((e as Error).message)) throw e;
    console.log(`# ${suite} tests skipped: ${(e as Error).message}`);
    return (e as Error).message;
  }
}
