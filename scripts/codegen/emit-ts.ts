/**
 * TypeScript for the reference kernel: `element` (one element's update) and, for trust-ratio
 * rules, `direction` (the statements before the last, returning `dir`). Plain float64 numbers;
 * a state is written into its Float32Array scratch, which rounds it, and read back from there.
 */
import { literal, type Expr, type Program, type Statement } from './program.js';

function expr(e: Expr, prog: Program): string {
  switch (e.k) {
    case 'num':
      return literal(e.v);
    case 'p':
      return 'p';
    case 'g':
      return 'g';
    case 'trust':
      return 'c.trust';
    case 'coef':
      return `c.${e.name}`;
    case 'state':
      return `s[${e.index}][j]`;
    case 'local':
      return `l_${e.name}`;
    case 'bin':
      return `(${expr(e.a, prog)} ${e.op} ${expr(e.b, prog)})`;
    case 'neg':
      return `(-${expr(e.a, prog)})`;
    case 'call':
      return e.fn === 'exact' ? expr(e.a, prog) : `Math.${e.fn}(${expr(e.a, prog)})`;
    case 'select':
      return `(c.${e.cond} !== 0 ? ${expr(e.a, prog)} : ${expr(e.b, prog)})`;
  }
}

function statement(s: Statement, prog: Program): string {
  if (s.k === 'state') return `    s[${s.index}][j] = ${expr(s.e, prog)};`;
  if (s.k === 'local') return `    const l_${s.name} = ${expr(s.e, prog)};`;
  return `    return ${expr(s.e, prog)};`;
}

/** The object literal of one rule's reference functions. */
export function emitTs(prog: Program): string {
  const sig = '(p: number, g: number, s: Float32Array[], j: number, c: Coefficients): number';
  const body = prog.statements.map((s) => statement(s, prog)).join('\n');
  const element = `  element${sig} {\n${body}\n  },`;
  if (!prog.trustRatio) return `{\n${element}\n}`;
  const dirBody = prog.statements.slice(0, -1).map((s) => statement(s, prog)).join('\n');
  return `{\n${element}\n  direction${sig} {\n${dirBody}\n    return l_dir;\n  },\n}`;
}
