/**
 * An update rule is the maths of one optimizer, written once (a `RuleSpec`), for float32
 * states. It does not know how its states are stored: a kernel hands it states already decoded
 * to float32 (from 8-bit codes or float32 storage) and re-encodes them afterwards, so a new
 * state format never touches a rule. `scripts/generate.ts` turns each spec's `program` into the
 * reference functions (`element`, `direction`), the WebAssembly loops and the WGSL snippets.
 */

/** Which quantization map a state uses when it is stored in 8 bits. */
export type StateSign = 'signed' | 'unsigned';

/** Hyperparameters of one tensor, after defaults, group options and overrides are merged (booleans: framework switches). */
export type Hyper = Readonly<Record<string, number | boolean | readonly number[]>>;

/**
 * Whether a rule's 4-bit states keep parity with its float32 states on the demo's tasks
 * (docs/quality-4bit.md): over 3 seeds, the mean final loss at most 1% above float32's and the
 * accuracy at most 0.5 points below. Where not, `optimBits: 4` needs `allow4bitWithoutParity`.
 */
export interface Parity4bit {
  /** True when the measurement met both bounds. */
  readonly kept: boolean;
  /** What was measured, short (quoted by the error that refuses 4-bit without the opt-in). */
  readonly evidence: string;
}

/** Per-step scalars a rule derives once per tensor (bias corrections, trust ratio, ...). */
export interface Coefficients {
  /** The learning rate in force for this tensor. */
  lr: number;
  /** LAMB/LARS: per-tensor scale of the update; 1 for every other rule. */
  trust: number;
  [name: string]: number;
}

/**
 * What a rule's author writes (src/optim/rules/*.ts). The registry (./rules/index.ts) adds the
 * generated reference functions and makes it an `UpdateRule`.
 */
export interface RuleSpec {
  /** Table key, e.g. 'adam'. */
  readonly name: string;
  /** State names and the map each uses in 8 bits, in storage order (state 1, state 2, ...). */
  readonly states: Readonly<Record<string, StateSign>>;
  /** Hyperparameters the rule accepts, with their defaults. */
  readonly defaults: Hyper;
  /** Rules that scale their update by ||p|| / ||dir|| need a norm pass first (LAMB, LARS). */
  readonly usesTrustRatio?: boolean;
  /** Extra checks of merged hyperparameters beyond the generic ones (throws naming the problem). */
  validate?(h: Hyper, who: string): void;
  /** Per-step scalars for step `t` (from 1), in float64: every name `program` reads, plus lr and trust (1). */
  coefficients(h: Hyper, t: number): Coefficients;
  /** The per-element maths in the rule language (scripts/codegen/program.ts). */
  readonly program: string;
  /** The measured 4-bit verdict: every built-in rule states one (the codegen ignores it). */
  readonly parity4bit: Parity4bit;
}

/** A registered update rule: the spec plus the generated reference functions (`RULES` holds the built-in ones). */
export interface UpdateRule {
  /** Table key, e.g. 'adam'. */
  readonly name: string;
  /** One entry per state tensor, in order (state 1, state 2, ...). */
  readonly states: readonly StateSign[];
  /** The states' names in the rule's program (built-in rules). */
  readonly stateNames?: readonly string[];
  /** The rule's program (built-in rules; see RuleSpec). */
  readonly program?: string;
  /** Hyperparameters the rule accepts, with their defaults (the reference library's). */
  readonly defaults: Hyper;
  /** Rules that scale their update by ||p|| / ||update|| need a norm pass first (LAMB, LARS). */
  readonly usesTrustRatio?: boolean;
  /** Extra checks of merged hyperparameters beyond the generic ones (throws naming the problem). */
  validate?(h: Hyper, who: string): void;
  /** The measured 4-bit verdict (built-in rules); a rule without one is not gated. */
  readonly parity4bit?: Parity4bit;
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
