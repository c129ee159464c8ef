/**
 * The 4-bit parity gate (issue 14: "where 4-bit does not keep parity, say so and keep it
 * available only behind an explicit option"): a rule whose spec says its 4-bit states were
 * measured not to keep parity (RuleSpec.parity4bit) refuses `optimBits: 4` wherever the option
 * can come into force — constructor, class default, group, setOptions, per-parameter override,
 * the tfjs adapter and its factories — unless `allow4bitWithoutParity: true` is in force there.
 * The verdicts are checked against the table in docs/quality-4bit.md, so docs and code agree.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as bitopt from '../src/index.js';
import { RULES } from '../src/optim/rules/index.js';
import * as tfjsBitopt from '../src/tfjs/index.js';

const REFUSED = /4-bit states do not keep parity with float32 for lion .*allow4bitWithoutParity: true/;
const big = () => new Float32Array(5000).fill(0.5);
const grad = () => new Float32Array(5000).fill(0.1);

/** Verdicts of the "Which rules keep parity at 4 bits" table: rule name -> kept. */
function docVerdicts(): Map<string, boolean> {
  const doc = readFileSync(new URL('../docs/quality-4bit.md', import.meta.url), 'utf8');
  const section = doc.split('\n## ').find((s) => s.startsWith('Which rules keep parity at 4 bits'));
  assert.ok(section, 'docs/quality-4bit.md has the section "Which rules keep parity at 4 bits"');
  const out = new Map<string, boolean>();
  for (const line of section.split('\n')) {
    const m = /^\| `(\w+)` .*\| (kept|not kept)\b[^|]*\|$/.exec(line);
    if (m) out.set(m[1], m[2] === 'kept');
  }
  return out;
}

describe('4-bit parity gate', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('every built-in rule states a verdict with its evidence, and docs/quality-4bit.md gives the same verdicts', () => {
    const doc = docVerdicts();
    for (const rule of Object.values(RULES)) {
      assert.equal(typeof rule.parity4bit?.kept, 'boolean', `${rule.name}: parity4bit.kept`);
      assert.match(rule.parity4bit!.evidence, /3 seeds/, `${rule.name}: evidence names the seeds`);
      assert.equal(doc.get(rule.name), rule.parity4bit!.kept, `${rule.name}: the docs' verdict`);
    }
    // The measured ones that lost (docs/quality-4bit.md): the momentum-only rules and LAMB on MNIST, RAdam on the language model.
    assert.deepEqual(Object.values(RULES).filter((r) => !r.parity4bit!.kept).map((r) => r.name).sort(), ['lamb', 'lars', 'lion', 'radam', 'sgd']);
  });

  it('a gated 4-bit class is refused at construction, naming the evidence and the opt-in; with the opt-in it trains', async () => {
    assert.throws(() => new bitopt.Lion4bit([big()]), REFUSED);
    assert.throws(() => new bitopt.Lion4bit([big()]), new RegExp(RULES.lion.parity4bit!.evidence.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    for (const Class of [bitopt.SGD4bit, bitopt.LAMB4bit, bitopt.LARS4bit, bitopt.RAdam4bit]) {
      assert.throws(() => new Class([big()]), /do not keep parity .*allow4bitWithoutParity/);
    }
    const p = big();
    const opt = new bitopt.Lion4bit([p], { lr: 1e-2, allow4bitWithoutParity: true });
    await opt.step([grad()]);
    // Lion's first step: p -= lr·sign(g) = 0.5 - 0.01.
    assert.ok(p.every((v) => Math.abs(v - 0.49) < 1e-7), `Lion4bit step 1: ${p[0]}`);
    assert.equal(opt.stateDict().tensors[0].states[0].format, 'blockwise4');
    // Kept rules need nothing.
    for (const Class of [bitopt.Adam4bit, bitopt.AdamW4bit, bitopt.RMSprop4bit, bitopt.Adagrad4bit, bitopt.AdEMAMix4bit]) new Class([big()]);
  });

  it('optimBits 4 reached through a group, setOptions or an override of an 8-bit class is refused the same way', () => {
    assert.throws(() => new bitopt.Lion8bit([big()], { optimBits: 4 }), REFUSED);
    assert.throws(() => new bitopt.Lion8bit([{ params: [big()], optimBits: 4 }]), REFUSED);
    const p = big();
    const opt = new bitopt.Lion8bit([p]);
    assert.throws(() => opt.setOptions({ optimBits: 4 }), REFUSED);
    assert.throws(() => opt.overrideConfig(p, { optimBits: 4 }), REFUSED);
    assert.equal(opt.groupOptions(0).optimBits, 8, 'a refused call changes nothing');
    // The opt-in where the 4-bit option is: the override, or the group.
    opt.overrideConfig(p, { optimBits: 4, allow4bitWithoutParity: true });
    new bitopt.Lion8bit([{ params: [big()], optimBits: 4, allow4bitWithoutParity: true }]);
  });

  it('other options change freely under the opt-in; turning the opt-in off under 4-bit options is refused', async () => {
    const p = big();
    const opt = new bitopt.Lion4bit([p], { allow4bitWithoutParity: true });
    opt.setOptions({ lr: 3e-4 }); // a partial change is checked with the options in force, opt-in included
    opt.overrideConfig(p, { weightDecay: 1e-2 });
    assert.throws(() => opt.setOptions({ allow4bitWithoutParity: false }), REFUSED);
    assert.throws(() => opt.overrideConfig(p, { allow4bitWithoutParity: false }), REFUSED);
    assert.throws(() => new bitopt.Lion4bit([big()], { allow4bitWithoutParity: 1 } as never), /allow4bitWithoutParity must be true or false, got 1/);
    await opt.step([grad()]);
    assert.equal(opt.groupOptions(0).lr, 3e-4);
  });

  it('the opt-in travels in the state dict; a checkpoint without the key takes the loading optimizer\'s', async () => {
    const p = big();
    const opt = new bitopt.Lion4bit([p], { allow4bitWithoutParity: true });
    await opt.step([grad()]);
    const dict = opt.stateDict();
    assert.equal(dict.groups[0].options.allow4bitWithoutParity, true);
    const back = bitopt.deserializeStateDict(bitopt.serializeStateDict(dict));
    assert.equal(back.groups[0].options.allow4bitWithoutParity, true);
    // A checkpoint written before the gate (no key) loads into an optimizer that opted in.
    const { allow4bitWithoutParity: _, ...older } = dict.groups[0].options;
    const other = new bitopt.Lion4bit([big()], { allow4bitWithoutParity: true });
    other.loadStateDict({ ...dict, groups: [{ ...dict.groups[0], options: older }] });
    assert.deepEqual(other.stateDict().tensors, dict.tensors);
    assert.equal(other.groupOptions(0).allow4bitWithoutParity, true);
  });

  it('the tfjs adapter refuses at construction (classes and factories) and accepts the opt-in', () => {
    assert.throws(() => new tfjsBitopt.Lion4bit(), REFUSED);
    assert.throws(() => tfjsBitopt.momentum4bit(1e-2, 0.9), /do not keep parity with float32 for sgd/);
    const m = tfjsBitopt.momentum4bit(1e-2, 0.9, { allow4bitWithoutParity: true });
    assert.equal(m.learningRate, 1e-2);
    const lion = new tfjsBitopt.Lion8bit();
    assert.throws(() => lion.setOptions({ optimBits: 4 }), REFUSED);
    assert.throws(() => lion.overrideConfig('x', { optimBits: 4 }), REFUSED);
    const allowed = new tfjsBitopt.Lion4bit({ allow4bitWithoutParity: true });
    allowed.learningRate = 1e-3; // a schedule's partial change
    const v = tf.variable(tf.ones([5000]), true, 'parity_gate_v');
    allowed.applyGradients({ [v.name]: tf.fill([5000], 0.1) });
    assert.ok(Math.abs(v.dataSync()[0] - (1 - 1e-3)) < 1e-6);
    allowed.dispose();
    m.dispose();
    lion.dispose();
    v.dispose();
  });
});
