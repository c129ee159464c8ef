/**
 * AssemblyScript for the WebAssembly kernel: per rule, an 'exact' loop (float64 on two lanes,
 * operation for operation the reference's, so results are bit-identical) and a 'float32' loop
 * (four lanes; float64 where the precision plan in ./program.ts says so). The loops use the
 * helpers and globals of assembly/common.ts; coefficients come from the descriptor's float64
 * slots in the order of `Program.coefficients` (slot 0 is the gradient scale, 1 the trust ratio).
 */
import { children, float64Locals, isUniform, literal, type Expr, type Program } from './program.js';

/** Descriptor float64 slots before the rule's own coefficients. */
export const FIXED_COEFFICIENT_SLOTS = { gradScale: 0, trust: 1 } as const;
export const FIRST_RULE_SLOT = 2;

/** Hoisted per-step scalars: uniform subtrees computed once per call in float64. */
class Hoister {
  readonly lines: string[] = [];
  private readonly names = new Map<string, string>();
  constructor(private readonly prog: Program) {}
  scalar(e: Expr): string {
    switch (e.k) {
      case 'num':
        return literal(e.v);
      case 'coef':
        return `k_${e.name}`;
      case 'trust':
        return 'k_trust';
      case 'bin':
        return `(${this.scalar(e.a)} ${e.op} ${this.scalar(e.b)})`;
      case 'neg':
        return `(-${this.scalar(e.a)})`;
      case 'call':
        return e.fn === 'exact' ? this.scalar(e.a) : `Math.${e.fn}(${this.scalar(e.a)})`;
      case 'select':
        return `(k_${e.cond} != 0 ? ${this.scalar(e.a)} : ${this.scalar(e.b)})`;
      default:
        throw new Error(`rule '${this.prog.rule}': not a per-step value`);
    }
  }
  /** Name of a hoisted scalar for a uniform subtree (a coefficient or trust keeps its own). */
  name(e: Expr): string {
    if (e.k === 'coef') return e.name;
    if (e.k === 'trust') return 'trust';
    return this.hoist(this.scalar(e));
  }
  /** Name of the hoisted reciprocal of a uniform subtree (a division turned into a multiply). */
  reciprocal(e: Expr): string {
    return this.hoist(`(1.0 / ${this.scalar(e)})`);
  }
  /** Every per-step scalar the loop may splat: the coefficients, trust and the hoisted ones. */
  allNames(): string[] {
    return [...this.prog.coefficients, 'trust', ...this.names.values()];
  }
  private hoist(code: string): string {
    let n = this.names.get(code);
    if (!n) {
      n = `h${this.names.size}`;
      this.names.set(code, n);
      this.lines.push(`  const k_${n}: f64 = ${code};`);
    }
    return n;
  }
}

function header(prog: Program, fn: string, h: Hoister, body: string[], lanes: 2 | 4): string {
  const S = prog.states.length;
  const slots = [
    `  const k_trust: f64 = df(desc, ${FIXED_COEFFICIENT_SLOTS.trust});`,
    ...prog.coefficients.map((c, i) => `  const k_${c}: f64 = df(desc, ${FIRST_RULE_SLOT + i});`),
  ];
  const splats = h.allNames().map((n) =>
    lanes === 2 ? `  const v_${n} = f64x2.splat(k_${n});` : `  const v_${n} = f64x2.splat(k_${n});\n  const w_${n} = f32x4.splat(<f32>k_${n});`,
  );
  const accs = [...Array(S).keys()].map((k) => `  let m${k} = f32x4.splat(0);`);
  const results = [0, 1, 2].map((k) => (k < S ? `  am${k} = max4(m${k});` : `  am${k} = 0;`));
  if (lanes === 4) return segmentedFunction(prog, fn, h, body, slots, splats);
  return `function ${fn}(desc: usize, mode: i32, n: i32, p: usize, g: usize, s0: usize, s1: usize, s2: usize): void {
  const gs = dfv(desc, ${FIXED_COEFFICIENT_SLOTS.gradScale});
${slots.join('\n')}
${h.lines.join('\n')}
${splats.join('\n')}
${accs.join('\n')}
  let nu = f64x2.splat(0);
  let nq = f64x2.splat(0);
  const end = <usize>n << 2;
  for (let o: usize = 0; o < end; o += ${lanes * 4}) {
${body.join('\n')}
  }
${results.join('\n')}
  normU = f64x2.extract_lane(nu, 0) + f64x2.extract_lane(nu, 1);
  normP = f64x2.extract_lane(nq, 0) + f64x2.extract_lane(nq, 1);
}`;
}

/**
 * The float32 loop's function: the n elements run as segments of `fseg` elements (one block
 * each; the whole n when fseg is 0), so one call updates a run of blocks and the per-call setup
 * (coefficients, splats, dispatch) is paid once per run, not once per block. Per segment it
 * reads the old absmax of each fused-decoded state from fapK and writes the new block absmax
 * to famOut (state k's segment j at famOut + 4·(k·AM_SEGMENTS + j)); amK is the last segment's.
 */
function segmentedFunction(prog: Program, fn: string, h: Hoister, body: string[], slots: string[], splats: string[]): string {
  const S = prog.states.length;
  const ks = [...Array(S).keys()];
  return `function ${fn}(desc: usize, mode: i32, n: i32, p: usize, g: usize, s0: usize, s1: usize, s2: usize): void {
  const gs = dfv(desc, ${FIXED_COEFFICIENT_SLOTS.gradScale});
${slots.join('\n')}
${h.lines.join('\n')}
${splats.join('\n')}
${ks.map((k) => `  const c${k} = fc${k};\n  const map${k} = fmap${k};\n  const ap${k} = fap${k};`).join('\n')}
  let nu = f64x2.splat(0);
  let nq = f64x2.splat(0);
  am0 = 0;
  am1 = 0;
  am2 = 0;
  const end = <usize>n << 2;
  const step = fseg > 0 ? <usize>fseg << 2 : end;
  for (let base: usize = 0, seg: usize = 0; base < end; base += step, seg += 4) {
${ks.map((k) => `    const a${k} = v128.load32_splat(ap${k} + seg);\n    let m${k} = f32x4.splat(0);`).join('\n')}
    const stop = base + step;
    for (let o: usize = base; o < stop; o += 16) {
${body.map((l) => `  ${l}`).join('\n')}
    }
${ks.map((k) => `    am${k} = max4(m${k});\n    store<f32>(famOut + seg + ${4 * k} * AM_SEGMENTS, am${k});`).join('\n')}
  }
  normU = f64x2.extract_lane(nu, 0) + f64x2.extract_lane(nu, 1);
  normP = f64x2.extract_lane(nq, 0) + f64x2.extract_lane(nq, 1);
}`;
}

const BIN64 = { '+': 'add', '-': 'sub', '*': 'mul', '/': 'div' } as const;

/** The exact loop: every value float64 on two lanes, states rounded to float32 when assigned. */
function exactLoop(prog: Program, fn: string): string {
  const h = new Hoister(prog);
  const e64 = (e: Expr): string => {
    if (isUniform(e) && e.k !== 'num') return `v_${h.name(e)}`;
    switch (e.k) {
      case 'num':
        return `f64x2.splat(${literal(e.v)})`;
      case 'p':
        return 'pv';
      case 'g':
        return 'gv';
      case 'state':
        return e.fresh ? `n${e.index}` : `o${e.index}`;
      case 'local':
        return `l_${e.name}`;
      case 'bin':
        return `f64x2.${BIN64[e.op]}(${e64(e.a)}, ${e64(e.b)})`;
      case 'neg':
        return `f64x2.neg(${e64(e.a)})`;
      case 'call':
        return e.fn === 'exact' ? e64(e.a) : e.fn === 'sqrt' ? `f64x2.sqrt(${e64(e.a)})` : `signOf(${e64(e.a)})`;
      case 'select':
        return `(k_${e.cond} != 0 ? ${e64(e.a)} : ${e64(e.b)})`;
      default:
        throw new Error('unreachable');
    }
  };
  const body = [
    '    const pv = ld2(p + o);',
    '    const gv = f64x2.mul(ld2(g + o), gs);',
    '    const fin = finiteMask(gv);',
    ...prog.states.map((_, k) => `    const o${k} = ld2(s${k} + o);`),
  ];
  // A state read again after its assignment must be rounded to float32 first (the reference reads
  // back its Float32Array); one that is only stored is rounded by st2 itself.
  const reread = new Set<number>();
  const walk = (e: Expr): void => {
    if (e.k === 'state' && e.fresh) reread.add(e.index);
    children(e).forEach(walk);
  };
  prog.statements.forEach((s) => walk(s.e));
  let param = '';
  for (const s of prog.statements) {
    if (s.k === 'state') body.push(reread.has(s.index) ? `    const n${s.index} = r32(${e64(s.e)});` : `    const n${s.index} = ${e64(s.e)};`);
    else if (s.k === 'local') body.push(`    const l_${s.name} = ${e64(s.e)};`);
    else param = e64(s.e);
  }
  if (prog.trustRatio) {
    body.push('    if (mode == 2) {', '      nu = sq2(nu, v128.and(r32(l_dir), fin));', '      nq = sq2(nq, pv);', '      continue;', '    }');
  }
  prog.states.forEach((_, k) => body.push(`    m${k} = f32x4.pmax(m${k}, f32x4.abs(st2(s${k} + o, v128.and(n${k}, fin))));`));
  body.push(`    st2(p + o, v128.bitselect(${param}, pv, fin));`);
  return header(prog, fn, h, body, 2);
}

/** The float32 loop: float64 where a state (or exact/sign) needs it, float32 elsewhere; four lanes. */
function float32Loop(prog: Program, fn: string): string {
  const h = new Hoister(prog);
  const wide = float64Locals(prog);
  const pair = (e: Expr): [string, string] => {
    if (isUniform(e) && e.k !== 'num') {
      const v = `v_${h.name(e)}`;
      return [v, v];
    }
    const both = (f: (x: string, y?: string) => string, a: [string, string], b?: [string, string]): [string, string] =>
      b ? [f(a[0], b[0]), f(a[1], b[1])] : [f(a[0]), f(a[1])];
    switch (e.k) {
      case 'num':
        return [`f64x2.splat(${literal(e.v)})`, `f64x2.splat(${literal(e.v)})`];
      case 'p':
        return ['lo64(pv)', 'hi64(pv)'];
      case 'g':
        return ['gl', 'gh'];
      case 'state': {
        const v = e.fresh ? `n${e.index}` : `o${e.index}`;
        return [`lo64(${v})`, `hi64(${v})`];
      }
      case 'local':
        if (!wide.has(e.name)) throw new Error(`rule '${prog.rule}': local '${e.name}' read in float64 but planned float32`);
        return [`l_${e.name}_lo`, `l_${e.name}_hi`];
      case 'bin':
        return both((x, y) => `f64x2.${BIN64[e.op]}(${x}, ${y})`, pair(e.a), pair(e.b));
      case 'neg':
        return both((x) => `f64x2.neg(${x})`, pair(e.a));
      case 'call':
        if (e.fn === 'exact') return pair(e.a);
        return both((x) => (e.fn === 'sqrt' ? `f64x2.sqrt(${x})` : `signOf(${x})`), pair(e.a));
      case 'select': {
        const a = pair(e.a);
        const b = pair(e.b);
        return [`(k_${e.cond} != 0 ? ${a[0]} : ${b[0]})`, `(k_${e.cond} != 0 ? ${a[1]} : ${b[1]})`];
      }
      default:
        throw new Error('unreachable');
    }
  };
  const join = (x: [string, string]) => `join32(${x[0]}, ${x[1]})`;
  const e32 = (e: Expr): string => {
    if (isUniform(e) && e.k !== 'num') return `w_${h.name(e)}`;
    switch (e.k) {
      case 'num':
        return `f32x4.splat(<f32>${literal(e.v)})`;
      case 'p':
        return 'pv';
      case 'g':
        return 'g32';
      case 'state':
        return e.fresh ? `n${e.index}` : `o${e.index}`;
      case 'local':
        return wide.has(e.name) ? `l_${e.name}_f` : `l_${e.name}`;
      case 'bin':
        // Division by a per-step value: one reciprocal per call, a multiply per element.
        if (e.op === '/' && isUniform(e.b) && e.b.k !== 'num') return `f32x4.mul(${e32(e.a)}, w_${h.reciprocal(e.b)})`;
        return `f32x4.${BIN64[e.op]}(${e32(e.a)}, ${e32(e.b)})`;
      case 'neg':
        return `f32x4.neg(${e32(e.a)})`;
      case 'call':
        return e.fn === 'sqrt' ? `f32x4.sqrt(${e32(e.a)})` : join(pair(e));
      case 'select':
        return `(k_${e.cond} != 0 ? ${e32(e.a)} : ${e32(e.b)})`;
      default:
        throw new Error('unreachable');
    }
  };
  const body = [
    '    const pv = v128.load(p + o);',
    '    const g4 = v128.load(g + o);',
    '    const gl = f64x2.mul(lo64(g4), gs);',
    '    const gh = f64x2.mul(hi64(g4), gs);',
    '    const g32 = join32(gl, gh);',
    '    const fin = joinMask(finiteMask(gl), finiteMask(gh));',
    ...prog.states.map((_, k) => `    const o${k} = ld4(s${k}, c${k}, o, map${k}, a${k});`),
  ];
  let param = '';
  for (const s of prog.statements) {
    if (s.k === 'state') body.push(`    const n${s.index} = ${join(pair(s.e))};`);
    else if (s.k === 'local' && wide.has(s.name)) {
      const [lo, hi] = pair(s.e);
      body.push(`    const l_${s.name}_lo = ${lo};`, `    const l_${s.name}_hi = ${hi};`, `    const l_${s.name}_f = join32(l_${s.name}_lo, l_${s.name}_hi);`);
    } else if (s.k === 'local') body.push(`    const l_${s.name} = ${e32(s.e)};`);
    else param = e32(s.e);
  }
  if (prog.trustRatio) {
    const dir = wide.has('dir') ? 'l_dir_f' : 'l_dir';
    body.push('    if (mode == 2) {', `      nu = sq4(nu, v128.and(${dir}, fin));`, '      nq = sq4(nq, pv);', '      continue;', '    }');
  }
  prog.states.forEach((_, k) =>
    body.push(`    const k${k} = v128.and(n${k}, fin);`, `    v128.store(s${k} + o, k${k});`, `    m${k} = f32x4.pmax(m${k}, f32x4.abs(k${k}));`),
  );
  body.push(`    v128.store(p + o, v128.bitselect(${param}, pv, fin));`);
  return header(prog, fn, h, body, 4);
}

/** assembly/generated/rules.ts: every rule's two loops and the dispatch by rule id. */
export function emitAssembly(programs: readonly Program[]): string {
  const loops = programs.flatMap((p) => [exactLoop(p, `${p.rule}Exact`), float32Loop(p, `${p.rule}Float32`)]);
  const dispatch = (suffix: string) =>
    programs.map((p, id) => `  ${id ? 'else ' : ''}if (rule == ${id}) ${p.rule}${suffix}(desc, mode, n, p, g, s0, s1, s2);`).join('\n');
  // Unused locals, splats and hoisted scalars are left to the optimizer (-O3 removes them).
  return `import { am0, am1, am2, normU, normP, fc0, fc1, fc2, fap0, fap1, fap2, fmap0, fmap1, fmap2, fseg, famOut, AM_SEGMENTS } from '../common';
import { df, dfv, ld2, st2, r32, finiteMask, signOf, sq2, ld4, lo64, hi64, join32, joinMask, sq4, max4 } from '../common';

${loops.join('\n\n')}

/** One rule over n (a multiple of 4) elements, float64 on two lanes, bit-identical to the reference. */
export function updateRun(desc: usize, rule: i32, mode: i32, n: i32, p: usize, g: usize, s0: usize, s1: usize, s2: usize): void {
${dispatch('Exact')}
}

/** One rule over n (a multiple of 4) elements, float32 parameter maths on four lanes, in segments of fseg elements (0: one). */
export function updateRun32(desc: usize, rule: i32, mode: i32, n: i32, p: usize, g: usize, s0: usize, s1: usize, s2: usize): void {
${dispatch('Float32')}
}
`;
}
