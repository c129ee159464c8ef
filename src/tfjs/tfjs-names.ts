/**
 * tfjs's names for bitopt's hyperparameters, in one table: the keys `getConfig()` writes (beside
 * bitopt's own), the keys `fromConfig` and the class constructors accept, and the properties a
 * tfjs optimizer exposes (`optimizer.learningRate = 1e-4`, `optimizer.beta1`). A name exists for
 * a class when its rule has the option (Adam's betas and eps, SGD's momentum, ...).
 */
import type { Hyper } from '../optim/rule.js';

export interface TfjsName {
  /** tfjs's key, e.g. 'beta1'. */
  readonly key: string;
  /** The bitopt option it stands for, e.g. 'betas'. */
  readonly option: string;
  /** Its element of an array option (betas), if any. */
  readonly index?: number;
}

export const TFJS_NAMES: readonly TfjsName[] = [
  { key: 'learningRate', option: 'lr' },
  { key: 'beta1', option: 'betas', index: 0 },
  { key: 'beta2', option: 'betas', index: 1 },
  { key: 'beta3', option: 'betas', index: 2 },
  { key: 'epsilon', option: 'eps' },
  { key: 'momentum', option: 'momentum' },
];

/** The tfjs names of a class whose options in force look like `defaults`. */
export function tfjsNamesFor(defaults: Hyper): TfjsName[] {
  return TFJS_NAMES.filter((n) => {
    const v = defaults[n.option];
    if (v === undefined) return false;
    return n.index === undefined ? !Array.isArray(v) : Array.isArray(v) && v.length > n.index;
  });
}

/** The value of `name` in the options in force `h`. */
export function readName(name: TfjsName, h: Hyper): number {
  const v = h[name.option];
  return (name.index === undefined ? v : (v as readonly number[])[name.index]) as number;
}

/** The option change that sets `name` to `value`, given the options in force `h`. */
export function writeName(name: TfjsName, value: unknown, h: Hyper): Record<string, unknown> {
  if (name.index === undefined) return { [name.option]: value };
  const arr = [...(h[name.option] as readonly number[])] as unknown[];
  arr[name.index] = value;
  return { [name.option]: arr };
}

/**
 * bitopt options from options that may use tfjs's keys (a tfjs config, or a constructor's
 * options): each tfjs key becomes its option, built over `h` (the defaults in force) for array
 * options. A key given both ways with different values throws: which one was meant is unknown.
 */
export function fromTfjsKeys(options: Record<string, unknown>, names: readonly TfjsName[], h: Hyper, who: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const tfjs: [TfjsName, unknown][] = [];
  for (const [k, v] of Object.entries(options)) {
    const name = names.find((n) => n.key === k && n.key !== n.option);
    if (name) tfjs.push([name, v]);
    else out[k] = v;
  }
  const base: Record<string, unknown> = { ...h, ...out };
  const fromNames: Record<string, unknown> = {};
  for (const [name, v] of tfjs) Object.assign(fromNames, writeName(name, v, { ...base, ...fromNames } as Hyper));
  for (const [option, v] of Object.entries(fromNames)) {
    if (option in out && JSON.stringify(out[option]) !== JSON.stringify(v)) {
      const keys = tfjs.filter(([n]) => n.option === option).map(([n]) => n.key).join('/');
      throw new Error(`${who}: '${keys}' and '${option}' both given, with different values (${JSON.stringify(v)} vs ${JSON.stringify(out[option])}): give one`);
    }
    out[option] = v;
  }
  return out;
}
