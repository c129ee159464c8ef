/**
 * Options as a careless or hostile caller passes them (issue 13, "Options"): every value that
 * would give NaN, an overflow or a silently ignored setting is refused with a message naming the
 * option and its range, and nothing changes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam, Adam8bit, AdamW, Lion, RMSprop, SGD } from '../src/index.js';

const p = () => [new Float32Array(64).fill(0.1)];

describe('options: unsafe values are refused, naming the range', () => {
  it('eps 0 (0/0 = NaN where a gradient element is 0) and a non-positive eps', () => {
    assert.throws(() => new Adam(p(), { eps: 0 }), /eps must be a finite number in \[1e-30, /);
    assert.throws(() => new RMSprop(p(), { eps: -1 }), /eps must be a finite number in/);
    // The smallest accepted eps still gives finite steps on a zero gradient.
    const params = p();
    const opt = new Adam(params, { eps: 1e-30 });
    opt.stepSync([new Float32Array(64)]);
    assert.ok(params[0].every(Number.isFinite));
  });
  it('betas with holes, the wrong length or values outside [0, 1)', () => {
    // eslint-disable-next-line no-sparse-arrays
    assert.throws(() => new Adam(p(), { betas: [0.9, , ] as unknown as [number, number] }), /betas\[1\] must be in \[0, 1\), got undefined/);
    assert.throws(() => new Adam(p(), { betas: [0.9] as unknown as [number, number] }), /betas must be an array of 2 numbers/);
    assert.throws(() => new Adam(p(), { betas: [0.9, 1] }), /betas\[1\] must be in \[0, 1\)/);
  });
  it('an array with a hostile iterator is read by index, never through its iterator', () => {
    const betas = [0.9, 0.99];
    (betas as unknown as { [Symbol.iterator]: () => Iterator<number> })[Symbol.iterator] = function* () {
      yield NaN;
      yield NaN;
    };
    const params = p();
    const opt = new Adam(params, { betas: betas as [number, number] });
    assert.deepEqual(opt.defaults.betas, [0.9, 0.99]);
    opt.stepSync([new Float32Array(64).fill(1)]);
    assert.ok(params[0].every(Number.isFinite));
  });
  it("names inherited from Object.prototype or a JSON '__proto__' are unknown options", () => {
    for (const name of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
      const options = JSON.parse(`{"${name}": 1}`);
      assert.throws(() => new Adam(p(), options), new RegExp(`unknown option '${name}'`));
    }
  });
  it('options that are not a plain object (a Map, an array, a class instance) are refused, not ignored', () => {
    assert.throws(() => new Adam(p(), new Map([['lr', 1]]) as unknown as object), /options must be a plain object, got Map/);
    assert.throws(() => new Adam(p(), [] as unknown as object), /options must be a plain object, got Array/);
    assert.throws(() => new Adam(p(), new (class Opts { lr = 1 })() as unknown as object), /options must be a plain object, got Opts/);
    assert.doesNotThrow(() => new Adam(p(), Object.assign(Object.create(null), { lr: 1e-3 })));
  });
  it('a group index that is not an integer of an existing group (a string "0" bypassed the storage rule)', () => {
    const opt = new Adam8bit(p());
    opt.stepSync([new Float32Array(64).fill(1)]);
    assert.throws(() => opt.setOptions({ lr: 1e-4 }, '0' as unknown as number), /no parameter group "0"/);
    assert.throws(() => opt.setOptions({ lr: 1e-4 }, 1), /no parameter group 1 \(groups are numbered 0\.\.0\)/);
    assert.throws(() => opt.setOptions({ optimBits: 32 }, 0), /optimBits cannot change once a parameter has state/);
  });
  it('RMSprop alpha 1 (v stays 0, every step g/eps) is refused; 0 is a valid RMSprop', () => {
    assert.throws(() => new RMSprop(p(), { alpha: 1 }), /alpha must be in \[0, 1\), got 1/);
    const params = p();
    const opt = new RMSprop(params, { alpha: 0, lr: 1e-2 });
    opt.stepSync([new Float32Array(64).fill(1)]);
    assert.ok(Math.abs(params[0][0] - (0.1 - 1e-2)) < 1e-6, `one step of lr·g/|g|: ${params[0][0]}`);
  });
  it('absurd learning rates and lr·weightDecay > 1 are refused wherever they are set (constructor, group, setOptions, override)', () => {
    assert.throws(() => new Adam(p(), { lr: 1e308 }), /lr must be a finite number in \[0, 10000\], got 1e\+308/);
    assert.throws(() => new Adam(p(), { lr: '1e-3' as unknown as number }), /lr must be a finite number in \[0, 10000\], got "1e-3"/);
    assert.throws(() => new AdamW(p(), { lr: 200 }), /lr·weightDecay must be at most 1 .*200 · 0\.01 = 2/);
    assert.throws(() => new SGD([{ params: p(), lr: 2 }], { weightDecay: 0.9 }), /group 0.*lr·weightDecay must be at most 1/);
    const params = p();
    const opt = new Lion(params, { weightDecay: 0.5 });
    assert.throws(() => opt.setOptions({ lr: 3 }), /lr·weightDecay must be at most 1/);
    assert.throws(() => opt.overrideConfig(params[0], { lr: 3 }), /lr·weightDecay must be at most 1/);
    assert.equal(opt.groupOptions(0).lr, 1e-4, 'nothing changed');
    opt.setOptions({ lr: 2 }); // 2 · 0.5 = 1: the decay factor reaches 0, allowed
  });
});

describe('a state dict carries the options in force, the constructor\'s included', () => {
  it('clipping set in the constructor survives a load into an optimizer built without it', async () => {
    const params = p();
    const a = new Adam8bit(params, { percentileClipping: 5, lr: 2e-3, weightDecay: 0.01 });
    for (let t = 0; t < 3; t++) await a.step([new Float32Array(64).fill(t + 1)]);
    const dict = a.stateDict();
    assert.equal(dict.groups[0].options.percentileClipping, 5);
    const b = new Adam8bit(p());
    b.loadStateDict(dict);
    const o = b.groupOptions(0);
    assert.deepEqual([o.percentileClipping, o.lr, o.weightDecay], [5, 2e-3, 0.01]);
    // Both continue identically from here.
    const pa = params[0];
    const pb = b.params[0];
    pb.set(pa);
    for (let t = 0; t < 2; t++) {
      const g = new Float32Array(64).fill(10 * (t + 1));
      await a.step([g]);
      await b.step([g.slice()]);
    }
    assert.deepEqual([...pb], [...pa]);
  });
});

