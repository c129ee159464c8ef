/**
 * An update rule is the maths of one optimizer, written once, for float32 states.
 * It does not know how its states are stored: the optimizer hands it a block of states
 * already decoded to float32 (from 8-bit codes or from float32 storage) and re-encodes them
 * afterwards, so a new state format never touches a rule (DESIGN §3).
 */

/** Which quantization map a state uses when it is stored in 8 bits. */
export type StateSign = 'signed' | 'unsigned';

/** Hyperparameters of one tensor, after defaults, group options and overrides are merged. */
export type Hyper = Readonly<Record<string, number | readonly number[]>>;

/** Per-step scalars a rule derives once per tensor (bias corrections, trust ratio, ...). */
export interface Coefficients {
  lr: number;
  /** LAMB/LARS: per-tensor scale of the update; 1 for every other rule. */
  trust: number;
  [name: string]: number;
}

export interface UpdateRule {
  /** Table key, e.g. 'adam'. */
  readonly name: string;
  /** One entry per state tensor, in order (state 1, state 2, ...). */
  readonly states: readonly StateSign[];
  /** Hyperparameters the rule accepts, with their defaults (the reference library's). */
  readonly defaults: Hyper;
  /** Rules that scale their update by ||p|| / ||update|| need a norm pass first (LAMB, LARS). */
  readonly usesTrustRatio?: boolean;
  /** Extra checks of merged hyperparameters beyond the generic ones (throws naming the problem). */
  validate?(h: Hyper, who: string): void;
  /** Scalars for step `t` (starting at 1). */
  coefficients(h: Hyper, t: number): Coefficients;
  /**
   * One element: `g` is finite and already scaled by gradient clipping; `s[k][j]` is this
   * element's state k in float32, updated in place. Returns the new parameter value.
   */
  element(p: number, g: number, s: Float32Array[], j: number, c: Coefficients): number;
  /**
   * Trust-ratio rules only: the element's update direction (the step before lr and trust),
   * updating `s[k][j]` in place exactly as `element` does.
   */
  direction?(p: number, g: number, s: Float32Array[], j: number, c: Coefficients): number;
}

/** Scalar hyperparameter `name` of `h`. */
export function num(h: Hyper, name: string): number {
  return h[name] as number;
}

/** Element `i` of the array hyperparameter `name` of `h` (e.g. betas). */
export function at(h: Hyper, name: string, i: number): number {
  return (h[name] as readonly number[])[i];
}
