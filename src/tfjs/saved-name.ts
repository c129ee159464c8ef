/**
 * The class name a bitopt optimizer writes into a saved model (`model.save` with
 * `includeOptimizer: true` stores `optimizer.getClassName()`). A process without bitopt fails to
 * load it with tfjs's `Unknown layer: <that name>. This may be due to …`, which has no room for
 * anything else: so the name itself says what the optimizer is and the fix. Both this name and
 * the plain `bitopt.<Class>` (files written before it) are registered for loading, and must stay
 * so: saved models carry it. No underscore: tfjs-layers camel-cases `_x` in loaded configs.
 */
export function savedClassName(className: string): string {
  return `${className} (an optimizer of the npm package bitopt: import 'bitopt/tfjs' before loading the model; to load it for inference without bitopt, see bitopt's docs/tfjs.md)`;
}
