/**
 * Registers the default CPU kernel of the full package: the WebAssembly SIMD kernel where
 * WebAssembly SIMD and shared memory exist, else the reference loop (src/kernels/cpu/default.ts).
 * Importing this module does it; the entry points (`bitopt`, `bitopt/browser`, `bitopt/tfjs`)
 * import it, so the optimizer framework (src/optim) never imports a kernel implementation.
 * Without it, optimizers run the reference kernel (src/optim/kernel.ts).
 */
import { createDefaultCpuKernel } from './kernels/cpu/default.js';
import { setDefaultCpuKernelFactory } from './optim/kernel.js';

setDefaultCpuKernelFactory(createDefaultCpuKernel);
