/**
 * WGSL snippets for the WebGPU kernel template (src/kernels/webgpu/template.ts): states are the
 * template's `s0..s2` (decoded, updated in place), the new parameter goes to `np`, a trust-ratio
 * rule's direction to `dir`. Per-step values become uniforms: each coefficient, and each
 * subtree of them that does not involve the trust ratio (computed once in float64 on the CPU,
 * e.g. the reciprocal a division by a coefficient turns into).
 */
import { isUniform, literal, mentionsTrust, type Expr, type Program } from './program.js';

export interface WgslEmission {
  /** Uniform names after the template's fixed ones (lr is fixed), in struct order. */
  uniformNames: string[];
  /** TypeScript expression (over `c: Coefficients`) of each uniform. */
  uniformValues: string[];
  element?: string;
  direction?: string;
  apply?: string;
}

function tsScalar(e: Expr): string {
  switch (e.k) {
    case 'num':
      return literal(e.v);
    case 'coef':
      return `c.${e.name}`;
    case 'bin':
      return `(${tsScalar(e.a)} ${e.op} ${tsScalar(e.b)})`;
    case 'neg':
      return `(-${tsScalar(e.a)})`;
    case 'call':
      return e.fn === 'exact' ? tsScalar(e.a) : `Math.${e.fn}(${tsScalar(e.a)})`;
    case 'select':
      return `(c.${e.cond} !== 0 ? ${tsScalar(e.a)} : ${tsScalar(e.b)})`;
    default:
      throw new Error('not a per-step value');
  }
}

export function emitWgsl(prog: Program): WgslEmission {
  const names = prog.coefficients.filter((c) => c !== 'lr');
  const values = names.map((c) => `c.${c}`);
  const hoisted = new Map<string, string>();
  const uniform = (ts: string): string => {
    let n = hoisted.get(ts);
    if (!n) {
      n = `h${hoisted.size}`;
      hoisted.set(ts, n);
      names.push(n);
      values.push(ts);
    }
    return `u.${n}`;
  };
  const e = (x: Expr): string => {
    if (isUniform(x) && !mentionsTrust(x) && x.k !== 'num' && x.k !== 'coef') return uniform(tsScalar(x));
    switch (x.k) {
      case 'num':
        return literal(x.v);
      case 'p':
        return 'p';
      case 'g':
        return 'g';
      case 'trust':
        return 'trust';
      case 'coef':
        return `u.${x.name}`;
      case 'state':
        return `s${x.index}`;
      case 'local':
        return `l_${x.name}`;
      case 'bin':
        if (x.op === '/' && isUniform(x.b) && !mentionsTrust(x.b)) return `(${e(x.a)} * ${uniform(`(1 / ${tsScalar(x.b)})`)})`;
        return `(${e(x.a)} ${x.op} ${e(x.b)})`;
      case 'neg':
        return `(-${e(x.a)})`;
      case 'call':
        return x.fn === 'exact' ? e(x.a) : `${x.fn}(${e(x.a)})`;
      case 'select':
        return `select(${e(x.b)}, ${e(x.a)}, u.${x.cond} != 0.0)`;
    }
  };
  const lines = prog.statements.map((s) => {
    if (s.k === 'state') return `  s${s.index} = ${e(s.e)};`;
    if (s.k === 'local') return `  let l_${s.name} = ${e(s.e)};`;
    return `  np = ${e(s.e)};`;
  });
  const snippets = prog.trustRatio
    ? { direction: [...lines.slice(0, -1), '  dir = l_dir;'].join('\n'), apply: lines.at(-1)! }
    : { element: lines.join('\n') };
  // A coefficient that only appears divided by (replaced by its hoisted reciprocal) is not a uniform.
  const text = Object.values(snippets).join('\n');
  const kept = names.map((n, i) => [n, values[i]] as const).filter(([n]) => new RegExp(`\\bu\\.${n}\\b`).test(text));
  return { uniformNames: kept.map(([n]) => n), uniformValues: kept.map(([, v]) => v), ...snippets };
}
