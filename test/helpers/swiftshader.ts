/**
 * Imported for its effect by the WebGPU suites, before they request a device: CI has no GPU, so
 * where Debian's chromium is installed and no Vulkan driver was chosen, Dawn gets SwiftShader's
 * (docs/architecture.md §5). A machine with a GPU (and no chromium) keeps its own driver.
 */
import { existsSync } from 'node:fs';

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && existsSync(SWIFTSHADER)) process.env.VK_ICD_FILENAMES = SWIFTSHADER;
process.env.XDG_RUNTIME_DIR ??= '/tmp';
