/**
 * TensorFlow.js for the demo: tfjs-core plus a CPU backend, with gradients registered.
 *
 * tfjs-core's Node bundle ships no gradient functions (the `@tensorflow/tfjs` union package
 * registers them, and it is not a dependency here). They exist only as extension-less ESM
 * under tfjs-core/dist, which Node cannot resolve; a tiny resolve hook adds the `.js`. The
 * gradients register into tfjs's global registry, so the main tfjs-core copy sees them.
 * Choosing the backend (cpu, wasm, webgpu) is ./backend.ts.
 */
import { register } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';

export { tf };

/** Resolve hook: extension-less relative imports inside tfjs-core/dist get `.js` (or `/index.js`). */
const HOOK = `
export async function resolve(specifier, context, next) {
  if (specifier.startsWith('.') && !specifier.endsWith('.js') && context.parentURL && context.parentURL.includes('/@tensorflow/tfjs-core/dist/')) {
    try { return await next(specifier + '.js', context); } catch { return next(specifier + '/index.js', context); }
  }
  return next(specifier, context);
}`;

let gradientsLoaded: Promise<void> | undefined;

/** Registers every tfjs gradient once per process (about a second the first time). */
export function ensureGradients(): Promise<void> {
  gradientsLoaded ??= (async () => {
    if (tf.getGradient('Mean')) return;
    if (typeof register !== 'function') throw new Error(`the demo needs Node 20.6 or later (module.register), this is ${process.version}`);
    register(`data:text/javascript,${encodeURIComponent(HOOK)}`);
    const spec = '@tensorflow/tfjs-core/dist/register_all_gradients.js';
    await import(spec);
    if (!tf.getGradient('Mean')) throw new Error('could not register the TensorFlow.js gradients');
  })();
  return gradientsLoaded;
}
