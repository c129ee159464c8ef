import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseProgram } from '../scripts/codegen/program.js';
import { generate } from '../scripts/generate.js';
import { RULES } from '../src/index.js';
import { WASM_RULES } from '../src/generated/kernel-layout.js';
import { WGSL_RULES } from '../src/generated/wgsl-rules.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

describe('rule language: a wrong program fails the build, naming the rule and the problem', () => {
  const ok = (src: string, coefs = ['lr', 'trust', 'b'], trust = false) => parseProgram('r', src, ['m'], coefs, trust);
  const bad = (src: string, message: RegExp, coefs = ['lr', 'trust', 'b'], trust = false) =>
    assert.throws(() => ok(src, coefs, trust), (e: Error) => message.test(e.message) && e.message.startsWith("rule 'r':"), src);

  it('accepts a well-formed program and orders coefficients lr first', () => {
    const p = ok('m = b * m + g\np = p - lr * m');
    assert.deepEqual(p.coefficients, ['lr', 'b']);
    assert.equal(p.statements.length, 2);
  });
  it('rejects unknown names (a typo is a build error, not a 0 or a NaN at run time)', () => bad('m = bb * m + g\np = p - lr * m', /unknown name 'bb'/));
  it('rejects a coefficient returned but never read', () => bad('m = m + g\np = p - lr * m', /returns b, which the program never reads/));
  it('rejects a state assigned twice or never', () => {
    bad('m = b * m\nm = m + g\np = p - lr * m', /assigned twice/);
    bad('p = p - lr * b * g', /state 'm' is never assigned/);
  });
  it("requires the last statement to assign p, and nothing after it", () => {
    bad('m = b * m + g', /last statement must assign 'p'/);
    bad('p = p - lr * g\nm = b * m', /'p' must be assigned by the last statement/);
  });
  it('keeps trust to trust-ratio rules, in their last statement, with a dir local', () => {
    bad('m = b * m + g\np = p - lr * trust * m', /only defined for trust-ratio rules/);
    bad('m = b * m + g\np = p - lr * trust * m', /local named 'dir'/, ['lr', 'trust', 'b'], true);
    bad('m = b * m + g\ndir = trust * m\np = p - lr * dir', /may only be read by the last statement/, ['lr', 'trust', 'b'], true);
  });
  it('conditions are per-step coefficients; syntax errors name the statement', () => {
    bad('m = g ? m : g\np = p - lr * b * m', /condition 'g' of '\?' must be a coefficient/);
    bad('m = b * m + g)\np = p - lr * m', /unexpected text after the statement assigning 'm'/);
    bad('m = b * m + $\np = p - lr * m', /unexpected character/);
  });
});

describe('generated code', () => {
  it('the committed generated files are what the generator writes (none stale or hand-edited)', () => {
    for (const [file, text] of generate()) {
      assert.equal(readFileSync(join(root, file), 'utf8'), text, `${file} is stale: run npm run generate`);
    }
  });
  it('every built-in rule has a WebAssembly layout with distinct ids and WGSL whose every uniform is defined', () => {
    const ids = new Set<number>();
    for (const [name, rule] of Object.entries(RULES)) {
      const layout = WASM_RULES[name];
      assert.ok(layout, `${name}: no WebAssembly layout`);
      ids.add(layout.id);
      const c = rule.coefficients(rule.defaults, 3);
      for (const k of layout.coefficients) assert.equal(typeof c[k], 'number', `${name}: slot '${k}' is not a coefficient`);
      const wgsl = WGSL_RULES[name];
      const text = [wgsl.element, wgsl.direction, wgsl.apply].filter(Boolean).join('\n');
      for (const [, u] of text.matchAll(/\bu\.(\w+)/g)) assert.ok(u === 'lr' || wgsl.uniformNames.includes(u), `${name}: WGSL reads u.${u}, not a uniform`);
      const values = wgsl.uniforms(c);
      for (const u of wgsl.uniformNames) assert.ok(Number.isFinite(values[u]), `${name}: uniform ${u} = ${values[u]}`);
      assert.equal(rule.direction !== undefined, rule.usesTrustRatio === true, `${name}: direction() exactly for trust-ratio rules`);
    }
    assert.equal(ids.size, Object.keys(RULES).length);
  });
});
