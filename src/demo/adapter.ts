/**
 * bitopt's TensorFlow.js adapter (src/tfjs: tf.Optimizer subclasses such as Adam8bit) as an
 * optimizer factory for the demo. Loaded at run time, so the demo still works in a build
 * without it; the training loop then calls `optimizer.minimize(loss)` as any tfjs user would.
 */
import { FAMILIES, type OptimizerFactory } from './optimizers.js';
import { tf } from './tf.js';

/** The part of the adapter's optimizer classes the demo uses. */
interface AdapterOptimizer extends tf.Optimizer {
  overrideConfig(variable: tf.Variable, options: { optimBits: 8 | 32 }): void;
  stateBytes(): number;
}
type AdapterClass = new (options?: { lr?: number }) => AdapterOptimizer;

export async function loadTfjsAdapter(): Promise<OptimizerFactory | undefined> {
  let mod: Record<string, unknown>;
  try {
    const path = '../tfjs/index.js';
    mod = (await import(path)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  return (spec, model) => {
    const className = spec.bits === 8 ? FAMILIES[spec.family].bits8 : FAMILIES[spec.family].bits32;
    const Class = mod[className] as AdapterClass | undefined;
    if (typeof Class !== 'function') throw new Error(`the bitopt TensorFlow.js adapter has no ${className}`);
    const opt = new Class({ lr: spec.lr });
    for (const v of model.fullPrecision) opt.overrideConfig(v, { optimBits: 32 });
    return {
      async step(lossFn) {
        const loss = opt.minimize(lossFn, true, model.variables)!;
        const value = (await loss.data())[0];
        loss.dispose();
        return value;
      },
      stateBytes: () => opt.stateBytes(),
      offTensorBytes: () => opt.stateBytes(),
      dispose: () => opt.dispose(),
    };
  };
}
