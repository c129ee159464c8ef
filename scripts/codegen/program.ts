/**
 * The rule language: a rule's per-element maths, written once as a few assignments, parsed into
 * a tree that the emitters turn into TypeScript (the reference kernel), AssemblyScript (both
 * precision modes of the WebAssembly kernel) and WGSL (the WebGPU kernel).
 *
 *   statement  := name '=' expr            one per line; '//' starts a comment
 *   expr       := coef '?' expr ':' expr   (the condition is a per-step coefficient, != 0)
 *               | sum
 *   sum        := product (('+' | '-') product)*
 *   product    := unary (('*' | '/') unary)*
 *   unary      := '-' unary | number | name | fn '(' expr ')' | '(' expr ')'
 *   fn         := sqrt | sign | exact
 *
 * Names: `p` (the parameter), `g` (the gradient, finite, already scaled by clipping), the rule's
 * state names (the old value until the state is assigned, the new float32-rounded value after),
 * locals assigned earlier, `trust` (trust-ratio rules only) and the numbers `coefficients()`
 * returns. Every state is assigned exactly once; the last statement assigns `p`.
 *
 * Precision (the contract every backend keeps): the reference evaluates everything in float64
 * and rounds a state to float32 when it is assigned (later reads see the rounded value) and the
 * parameter when it is stored. The WebAssembly 'exact' mode does the same bit for bit. The
 * 'float32' mode computes in float64 whatever feeds a state (so states and codes stay
 * bit-identical) and everything else in float32, except `exact(x)` and the argument of
 * `sign(x)` (discontinuous: a rounding must not flip it), which stay float64. WGSL is float32.
 */

export type Expr =
  | { k: 'num'; v: number }
  | { k: 'p' }
  | { k: 'g' }
  | { k: 'trust' }
  | { k: 'coef'; name: string }
  | { k: 'state'; index: number; fresh: boolean }
  | { k: 'local'; name: string }
  | { k: 'bin'; op: '+' | '-' | '*' | '/'; a: Expr; b: Expr }
  | { k: 'neg'; a: Expr }
  | { k: 'call'; fn: 'sqrt' | 'sign' | 'exact'; a: Expr }
  | { k: 'select'; cond: string; a: Expr; b: Expr };

export type Statement =
  | { k: 'state'; index: number; e: Expr }
  | { k: 'local'; name: string; e: Expr }
  | { k: 'param'; e: Expr };

export interface Program {
  readonly rule: string;
  readonly states: readonly string[];
  readonly statements: readonly Statement[];
  /** Per-step coefficients the program reads, in slot order (`lr` first). */
  readonly coefficients: readonly string[];
  /** Trust-ratio rules: the statements before the last one compute the local `dir`. */
  readonly trustRatio: boolean;
}

const FUNCTIONS = new Set(['sqrt', 'sign', 'exact']);
const RESERVED = new Set(['p', 'g', 'trust', ...FUNCTIONS]);

type Token = { t: 'num'; v: number } | { t: 'name'; v: string } | { t: 'op'; v: string } | { t: 'nl' };

function tokenize(src: string, fail: (m: string) => never): Token[] {
  const out: Token[] = [];
  const re = /[ \t\r]*(?:(\/\/[^\n]*)|(\n)|(\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+(?:e[+-]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|([-+*/()=?:]))/y;
  let at = 0;
  while (at < src.length) {
    if (/^\s*$/.test(src.slice(at))) break;
    re.lastIndex = at;
    const m = re.exec(src);
    if (!m) fail(`unexpected character ${JSON.stringify(src.slice(at).trim()[0])}`);
    at = re.lastIndex;
    if (m[1] !== undefined) continue;
    if (m[2] !== undefined) out.push({ t: 'nl' });
    else if (m[3] !== undefined) out.push({ t: 'num', v: Number(m[3]) });
    else if (m[4] !== undefined) out.push({ t: 'name', v: m[4] });
    else out.push({ t: 'op', v: m[5] });
  }
  out.push({ t: 'nl' });
  return out;
}

/**
 * Parses and checks `source` for a rule with these states and coefficients. Throws, naming the
 * rule and the problem, on any name that is not defined, a state assigned twice or never, a
 * coefficient returned but never read, and so on: a wrong name fails the build, not a run.
 */
export function parseProgram(rule: string, source: string, states: readonly string[], coefficientNames: readonly string[], trustRatio: boolean): Program {
  const fail = (m: string): never => {
    throw new Error(`rule '${rule}': ${m}`);
  };
  const coefs = new Set(coefficientNames);
  if (!coefs.has('lr')) fail(`coefficients() must return lr`);
  for (const c of coefs) {
    if (RESERVED.has(c) && c !== 'trust') fail(`coefficient name '${c}' is reserved`);
    if (states.includes(c)) fail(`coefficient '${c}' has the name of a state`);
  }
  for (const s of states) if (RESERVED.has(s)) fail(`state name '${s}' is reserved`);
  const toks = tokenize(source, fail);
  let i = 0;
  const peek = () => toks[i];
  const next = () => toks[i++];
  const isOp = (v: string) => peek().t === 'op' && (peek() as { v: string }).v === v;
  const expectOp = (v: string) => {
    if (!isOp(v)) fail(`expected '${v}'`);
    i++;
  };
  const assigned = new Set<number>();
  const locals = new Set<string>();
  const used = new Set<string>();
  const statements: Statement[] = [];

  const name = (v: string): Expr => {
    if (v === 'p') return { k: 'p' };
    if (v === 'g') return { k: 'g' };
    if (v === 'trust') {
      if (!trustRatio) fail(`'trust' is only defined for trust-ratio rules`);
      return { k: 'trust' };
    }
    const s = states.indexOf(v);
    if (s >= 0) return { k: 'state', index: s, fresh: assigned.has(s) };
    if (locals.has(v)) return { k: 'local', name: v };
    if (coefs.has(v)) {
      used.add(v);
      return { k: 'coef', name: v };
    }
    return fail(`unknown name '${v}' (not p, g, a state, an earlier local or a coefficient)`);
  };
  const unary = (): Expr => {
    const t = next();
    if (t.t === 'op' && t.v === '-') return { k: 'neg', a: unary() };
    if (t.t === 'op' && t.v === '(') {
      const e = expr();
      expectOp(')');
      return e;
    }
    if (t.t === 'num') return { k: 'num', v: t.v };
    if (t.t === 'name') {
      if (FUNCTIONS.has(t.v)) {
        expectOp('(');
        const a = expr();
        expectOp(')');
        return { k: 'call', fn: t.v as 'sqrt' | 'sign' | 'exact', a };
      }
      return name(t.v);
    }
    return fail(`unexpected ${t.t === 'nl' ? 'end of line' : `'${(t as { v: unknown }).v}'`}`);
  };
  const product = (): Expr => {
    let e = unary();
    while (isOp('*') || isOp('/')) {
      const op = (next() as { v: '*' | '/' }).v;
      e = { k: 'bin', op, a: e, b: unary() };
    }
    return e;
  };
  const sum = (): Expr => {
    let e = product();
    while (isOp('+') || isOp('-')) {
      const op = (next() as { v: '+' | '-' }).v;
      e = { k: 'bin', op, a: e, b: product() };
    }
    return e;
  };
  const expr = (): Expr => {
    const t = peek();
    const after = toks[i + 1];
    if (t.t === 'name' && after?.t === 'op' && after.v === '?') {
      if (!coefs.has(t.v)) fail(`the condition '${t.v}' of '?' must be a coefficient`);
      used.add(t.v);
      i += 2;
      const a = expr();
      expectOp(':');
      return { k: 'select', cond: t.v, a, b: expr() };
    }
    return sum();
  };

  while (i < toks.length) {
    if (peek().t === 'nl') {
      i++;
      continue;
    }
    const target = next();
    if (target.t !== 'name') fail(`a statement starts with the name it assigns`);
    const v = (target as { v: string }).v;
    expectOp('=');
    const e = expr();
    if (peek().t !== 'nl') fail(`unexpected text after the statement assigning '${v}'`);
    if (statements.some((s) => s.k === 'param')) fail(`'p' must be assigned by the last statement`);
    const s = states.indexOf(v);
    if (v === 'p') statements.push({ k: 'param', e });
    else if (s >= 0) {
      if (assigned.has(s)) fail(`state '${v}' is assigned twice`);
      assigned.add(s);
      statements.push({ k: 'state', index: s, e });
    } else {
      if (RESERVED.has(v) || coefs.has(v) || locals.has(v)) fail(`'${v}' cannot be assigned (reserved, a coefficient, or assigned before)`);
      locals.add(v);
      statements.push({ k: 'local', name: v, e });
    }
  }
  if (statements.at(-1)?.k !== 'param') fail(`the last statement must assign 'p'`);
  states.forEach((s, k) => assigned.has(k) || fail(`state '${s}' is never assigned`));
  if (trustRatio) {
    if (!locals.has('dir')) fail(`a trust-ratio rule computes its update direction in a local named 'dir'`);
    const usesTrust = (e: Expr): boolean => e.k === 'trust' || ('a' in e && usesTrust(e.a)) || ('b' in e && usesTrust(e.b));
    if (statements.slice(0, -1).some((s) => usesTrust(s.e))) fail(`'trust' may only be read by the last statement`);
  }
  const unused = coefficientNames.filter((c) => c !== 'trust' && !used.has(c));
  if (unused.length) fail(`coefficients() returns ${unused.join(', ')}, which the program never reads`);
  const order = ['lr', ...coefficientNames.filter((c) => c !== 'lr' && c !== 'trust')];
  return { rule, states, statements, coefficients: order, trustRatio };
}

/** Children of a node (for walks). */
export function children(e: Expr): Expr[] {
  switch (e.k) {
    case 'bin':
    case 'select':
      return [e.a, e.b];
    case 'neg':
    case 'call':
      return [e.a];
    default:
      return [];
  }
}

/** Does `e` depend only on per-step values (coefficients, trust, numbers)? Then it can be hoisted out of the loop. */
export function isUniform(e: Expr): boolean {
  if (e.k === 'coef' || e.k === 'num' || e.k === 'trust') return true;
  if (e.k === 'select') return isUniform(e.a) && isUniform(e.b);
  const c = children(e);
  return c.length > 0 && c.every(isUniform);
}

export function mentionsTrust(e: Expr): boolean {
  return e.k === 'trust' || children(e).some(mentionsTrust);
}

/**
 * The float32 mode's precision plan: which locals must be float64 (they feed a state, or sit
 * under exact()/sign()). A node is float64 when its context is: a state's right-hand side,
 * an exact()/sign() argument, or (through a local) anything such a node reads.
 */
export function float64Locals(prog: Program): Set<string> {
  const need = new Set<string>();
  const mark = (e: Expr, f64: boolean) => {
    if (e.k === 'local' && f64) need.add(e.name);
    const inner = f64 || (e.k === 'call' && (e.fn === 'exact' || e.fn === 'sign'));
    for (const c of children(e)) mark(c, inner);
  };
  // Walk backwards so a local used in float64 context marks its own definition.
  for (let s = prog.statements.length - 1; s >= 0; s--) {
    const st = prog.statements[s];
    mark(st.e, st.k === 'state' || (st.k === 'local' && need.has(st.name)));
  }
  return need;
}

/** Numbers formatted so every target reads them as the same float64 (and WGSL as a float). */
export function literal(v: number): string {
  if (!Number.isFinite(v)) throw new Error(`non-finite literal ${v}`);
  const s = String(v);
  return /[.e]/.test(s) ? s : `${s}.0`;
}
