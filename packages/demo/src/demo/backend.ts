/**
 * The demo's TensorFlow.js backend selection. It lives apart from ./tf.ts (tfjs-core plus the
 * CPU backend and gradients, imported by every model) so that ./webgpu.ts can import `tf`
 * without an import circle: this module imports both, neither imports it.
 */
import { ensureGradients, tf } from './tf.js';

export type TfBackend = 'cpu' | 'wasm' | 'webgpu';

/**
 * Selects the tfjs backend. 'wasm' (XNNPACK, about 3x faster on this kind of model) falls back
 * to 'cpu' with a message when it cannot start. 'webgpu' (a GPU through Dawn, ./webgpu.ts)
 * never falls back: it throws a message that says what is missing.
 */
export async function initTf(backend: TfBackend, log: (line: string) => void = () => {}): Promise<TfBackend> {
  await ensureGradients();
  if (backend === 'webgpu') {
    const { initWebgpuBackend } = await import('./webgpu.js');
    await initWebgpuBackend(log);
    return backend;
  }
  let chosen: TfBackend = backend;
  if (backend === 'wasm') {
    try {
      await import('@tensorflow/tfjs-backend-wasm');
      if (!(await tf.setBackend('wasm'))) throw new Error('setBackend returned false');
    } catch (e) {
      log(`tfjs wasm backend unavailable (${(e as Error).message}); using the cpu backend`);
      chosen = 'cpu';
    }
  }
  if (chosen === 'cpu') await tf.setBackend('cpu');
  await tf.ready();
  return chosen;
}
