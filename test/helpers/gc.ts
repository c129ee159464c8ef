/**
 * Garbage collection on demand, for tests that check what memory is released: V8's gc() made
 * callable without --expose-gc on the command line, and a settle loop for the WebAssembly
 * kernel's memory (placed states are released when their optimizer drops them and they are
 * collected, src/kernels/cpu/wasm-codecs.ts).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { wasmRuntime } from '../../src/kernels/cpu/wasm-runtime.js';

export function gcFunction(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Collects until the kernel memory in use stops changing (earlier garbage released); returns it. */
export async function settleKernelMemory(): Promise<number> {
  const gc = gcFunction();
  const rt = wasmRuntime();
  let last = -1;
  for (let i = 0; i < 40 && rt.bytesInUse !== last; i++) {
    last = rt.bytesInUse;
    for (let k = 0; k < 3; k++) {
      gc();
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  return rt.bytesInUse;
}
