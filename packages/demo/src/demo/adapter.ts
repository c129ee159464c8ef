/**
 * bitopt's TensorFlow.js adapter (src/tfjs: tf.Optimizer subclasses such as Adam8bit) as an
 * optimizer factory for the demo; the training loop then calls `optimizer.minimize(loss)` as
 * any tfjs user would. On tfjs's webgpu backend the adapter steps the weights on the GPU with
 * bitopt's WGSL kernels (bitopt's src/tfjs/webgpu-engine.ts); elsewhere it steps them on the CPU.
 */
import { gpuTensorBytes } from 'bitopt';
import { createOptimizerFactory, specClassName, type OptimizerFactory } from './optimizers.js';
import { tf } from './tf.js';

/** The part of the adapter's optimizer classes the demo uses. */
interface AdapterOptimizer extends tf.Optimizer {
  overrideConfig(variable: tf.Variable, options: { optimBits: 32 }): void;
  stateBytes(): number;
  setLearningRate(lr: number): void;
}
type AdapterClass = new (options?: { lr?: number }) => AdapterOptimizer;

/**
 * GPU bytes the webgpu engine keeps besides the state, per variable: its parameter buffer
 * (the WGSL kernel is bound to a fixed buffer; the variable's own changes at every assign),
 * 4 B/parameter padded to whole vec4s. Gradients whose element count is not a multiple of 4
 * may also get a padded copy; the few small tensors of that kind are not counted.
 */
export function webgpuStepperExtraBytes(sizes: number[]): number {
  return sizes.reduce((a, n) => a + gpuTensorBytes(n), 0);
}

/**
 * The demo's optimizer factory for `via`: bitopt's Float32Array API ('core') or its tfjs adapter
 * ('tfjs'); TensorFlow.js's own Adam baseline is tf.train.adam either way.
 */
export async function demoOptimizerFactory(via: 'core' | 'tfjs'): Promise<OptimizerFactory> {
  if (via === 'core') return createOptimizerFactory();
  const adapter = await loadTfjsAdapter();
  if (!adapter) throw new Error('--via tfjs: the bitopt TensorFlow.js adapter (bitopt/tfjs) is not available in this build');
  return createOptimizerFactory(adapter);
}

/** The adapter's classes as a factory for 'adapter' specs (undefined in a build without it). */
export async function loadTfjsAdapter(): Promise<OptimizerFactory | undefined> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import('bitopt/tfjs')) as unknown as Record<string, unknown>;
  } catch {
    return undefined;
  }
  return (spec, model) => {
    const className = specClassName(spec);
    const Class = mod[className] as AdapterClass | undefined;
    if (typeof Class !== 'function') throw new Error(`the bitopt TensorFlow.js adapter has no ${className}`);
    const opt = new Class({ lr: spec.lr });
    for (const v of model.fullPrecision) opt.overrideConfig(v, { optimBits: 32 });
    // The adapter picks its engine by the backend current at the first step.
    const onGpu = tf.getBackend() === 'webgpu';
    const gpuExtra = onGpu ? webgpuStepperExtraBytes(model.variables.map((v) => v.size)) : 0;
    let stepped = false;
    return {
      async step(lossFn) {
        const loss = opt.minimize(lossFn, true, model.variables)!;
        stepped = true;
        // Reading the loss waits for the GPU queue, bitopt's update included (submitted before).
        const value = (await loss.data())[0];
        loss.dispose();
        return value;
      },
      setLearningRate: (lr) => opt.setLearningRate(lr),
      // On the GPU: the bytes of the GPUBuffers bitopt allocated for the state (8-bit codes,
      // absmax per block, float32 states), as allocated (padded to whole vec4s).
      stateBytes: () => opt.stateBytes(),
      offTensorBytes: () => opt.stateBytes() + (stepped ? gpuExtra : 0),
      dispose: () => opt.dispose(),
    };
  };
}
