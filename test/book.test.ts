/**
 * The bookkeeping engines share (src/optim/book.ts), on its own, over handles that are not
 * arrays (names, as the tfjs adapter has): option resolution and validation, storage options
 * fixed once state exists, joining parameters, step counts, checkpoints assembled and parsed.
 * Also the class description without an optimizer, the injected default kernel, and the
 * layering (optim imports no kernel implementation but the reference).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Adam, Adam8bit, AdamW, createReferenceKernel, Lion8bit, RMSprop, SGD8bit, type CpuKernel } from '../src/index.js';
import { ParamBook, paramStateDict, parseStateDict, storedParts, validateOptions } from '../src/optim/book.js';
import { setDefaultCpuKernelFactory } from '../src/optim/kernel.js';
import { describeOptimizerClass } from '../src/optim/optimizer.js';
import { adam, lion, rmsprop } from '../src/optim/rules/index.js';

const bits8 = { className: 'Adam8bit', defaults: { optimBits: 8 } };

/** A book over named parameters: group 0 {lr 0.2} with a (9000) and b (100), group 1 {} with c (5000). */
function namedBook() {
  const book = new ParamBook<string>(adam, bits8, { lr: 0.1, weightDecay: 0.5 });
  const g0 = book.addGroup({ lr: 0.2 });
  const g1 = book.addGroup({});
  const a = book.add('a', 9000, g0);
  const b = book.add('b', 100, g0);
  const c = book.add('c', 5000, g1);
  return { book, a, b, c };
}

describe('validateOptions: a plain function of (rule, class defaults, options)', () => {
  test('names, ranges and the rule\'s own checks; a frozen copy', () => {
    assert.throws(() => validateOptions(adam, { optimBits: 8 }, { momentum: 0.9 }, 'Adam8bit'), /^Error: Adam8bit: unknown option 'momentum' \(accepted: .*betas.*optimBits/);
    assert.throws(() => validateOptions(adam, undefined, { lr: -1 }, 'X'), /X: lr must be a finite number in \[0, 10000\], got -1/);
    assert.throws(() => validateOptions(adam, undefined, { betas: [0.9] }, 'X'), /betas must be an array of 2 numbers/);
    assert.throws(() => validateOptions(rmsprop, undefined, { alpha: 1.5 }, 'RMSprop'), /RMSprop: alpha must be in \[0, 1\), got 1.5/);
    assert.throws(() => validateOptions(adam, undefined, { blockSize: 100 }, 'X'), /blockSize/);
    const betas = [0.8, 0.9];
    const h = validateOptions(adam, { optimBits: 8 }, { betas, lr: 1e-3 }, 'X');
    betas[0] = 0.1;
    assert.deepEqual(h, { betas: [0.8, 0.9], lr: 1e-3 });
    assert.ok(Object.isFrozen(h.betas));
    assert.deepEqual(validateOptions(adam, undefined, undefined, 'X'), {});
    assert.deepEqual(validateOptions(adam, undefined, { params: [1], lr: 2 }, 'X', ['params']), { lr: 2 });
  });
});

describe('ParamBook', () => {
  test('options resolve as class defaults → constructor options → group → override', () => {
    const { book, a, b, c } = namedBook();
    assert.equal(book.defaults.optimBits, 8, 'class default');
    assert.equal(book.defaults.eps, 1e-8, 'rule default');
    assert.equal(book.defaults.lr, 0.1, 'constructor option');
    book.override(b, { lr: 0.3, eps: 1e-6 });
    assert.equal(book.optionsFor(a).lr, 0.2);
    assert.equal(book.optionsFor(b).lr, 0.3);
    assert.equal(book.optionsFor(b).eps, 1e-6);
    assert.equal(book.optionsFor(b).weightDecay, 0.5);
    assert.equal(book.optionsFor(c).lr, 0.1);
    book.setOptions({ lr: 0.05 }, 1);
    assert.equal(book.optionsFor(c).lr, 0.05);
    assert.equal(book.optionsFor(a).lr, 0.2);
    book.setOptions({ lr: 0.01 });
    assert.deepEqual([a, b, c].map((s) => book.optionsFor(s).lr), [0.01, 0.3, 0.01], 'the override still wins');
    assert.equal(book.groupOptions(0).lr, 0.01);
    assert.throws(() => book.groupOptions(2), /Adam8bit: no parameter group 2/);
    assert.throws(() => book.setOptions({ lr: 1 }, 5), /no parameter group 5/);
    assert.throws(() => book.override(a, { nope: 1 }), /unknown option 'nope'/);
    assert.throws(() => book.addGroup({ lr: -2 }), /Adam8bit \(group 2\): lr must be/);
  });

  test('storage options are fixed once a parameter has state; hyperparameters are not', () => {
    const { book, a, c } = namedBook();
    assert.deepEqual(book.storageFor(a), { format: 'blockwise8', blockSize: 256 });
    assert.deepEqual(book.storageFor(book.slots[1]), { format: 'float32', blockSize: 256 }, 'under min8bitSize');
    book.override(a, { optimBits: 32, blockSize: 64 });
    assert.deepEqual(book.storageFor(a), { format: 'float32', blockSize: 64 });
    a.state = book.createStores(a);
    assert.deepEqual(a.state.map((s) => s.format), ['float32', 'float32']);
    assert.throws(() => book.override(a, { optimBits: 8 }), /Adam8bit: optimBits cannot change once a parameter has state/);
    assert.throws(() => book.setOptions({ min8bitSize: 0 }), /min8bitSize cannot change once a parameter has state/);
    assert.throws(() => book.setOptions({ blockSize: 128 }, 0), /blockSize cannot change/);
    book.setOptions({ blockSize: 128 }, 1); // group 1 (c) has no state yet
    assert.equal(book.storageFor(c).blockSize, 128);
    book.override(a, { lr: 1e-4 });
    book.setOptions({ lr: 1e-3 });
    assert.equal(book.optionsFor(a).lr, 1e-4);
  });

  test('advance counts steps and derives the rule\'s coefficients for that step', () => {
    const { book, a, c } = namedBook();
    const t1 = book.advance(a);
    const t2 = book.advance(a);
    assert.deepEqual([a.step, c.step, t1.step, t2.step], [2, 0, 1, 2]);
    assert.deepEqual(t2.coefficients, adam.coefficients(book.optionsFor(a), 2));
    assert.notDeepEqual(t1.coefficients, t2.coefficients, 'bias corrections depend on the step');
    assert.equal(t1.percentile, 100);
    assert.equal(t1.maxUnorm, 0, 'adam has no trust ratio');
  });

  test('join validates everything before the parameter is added; replace keeps state and overrides', () => {
    const { book, a } = namedBook();
    assert.throws(() => book.join('d', 10, { override: { lr: -1 } }), /override of parameter 3.*lr must be/);
    assert.throws(() => book.join('d', 10, { state: { length: 11, step: 0, states: [], clipHistory: null } }), /tensor 3: state is for 11 elements but the parameter has 10/);
    assert.throws(() => book.join('d', 10, { group: 4 }), /no parameter group 4/);
    assert.equal(book.slots.length, 3, 'nothing was added');
    assert.ok(!book.has('d'));
    const donor = new ParamBook<string>(adam, bits8, {});
    donor.addGroup();
    const ds = donor.add('x', 10);
    ds.state = donor.createStores(ds);
    for (let t = 0; t < 7; t++) donor.advance(ds);
    const entry = donor.stateDict([storedParts(ds)]).tensors[0];
    const { slot, restored } = book.join('d', 10, { group: 1, override: { optimBits: 32 }, state: entry });
    assert.deepEqual([slot.index, slot.group, slot.step], [3, 1, 7]);
    assert.deepEqual(restored!.states!.map((s) => [s.format, s.length]), [['float32', 10], ['float32', 10]]);
    assert.notEqual(restored!.states![0], ds.state[0], 'fresh stores');
    assert.equal(slot.state, null, 'the engine installs the state');
    assert.equal(book.optionsFor(slot).optimBits, 32);
    assert.throws(() => book.add('d', 10), /already in this optimizer/);
    book.override(a, { lr: 0.7 });
    book.replace(a, 'a2');
    assert.ok(book.has('a2') && !book.has('a'));
    assert.equal(book.slotOf('a2'), a);
    assert.equal(book.optionsFor(a).lr, 0.7);
    assert.throws(() => book.replace(a, 'd'), /already parameter 3/);
    assert.deepEqual(book.params, ['a2', 'b', 'c', 'd']);
  });

  test('checkpoint: assembled from the engine\'s parts, parsed back completely, overrides in the order they were set', () => {
    const { book, a, b, c } = namedBook();
    book.override(c, { lr: 0.4 });
    book.override(a, { eps: 1e-7 });
    for (const s of [a, b]) {
      s.state = book.createStores(s);
      book.advance(s);
    }
    a.state![0].store(0, 4, new Float32Array([0.5, -0.25, 0, 1]));
    const dict = book.stateDict(book.slots.map(storedParts));
    // Each group's options in force: the constructor's (lr 0.1, weightDecay 0.5) under the group's own.
    const inForce = (o: object) => ({ ...adam.defaults, optimBits: 8, min8bitSize: 4096, percentileClipping: 100, allow4bitWithoutParity: false, lr: 0.1, weightDecay: 0.5, ...o });
    assert.deepEqual(dict.groups, [{ options: inForce({ lr: 0.2 }), params: [0, 1] }, { options: inForce({}), params: [2] }]);
    assert.deepEqual(dict.overrides, [{ param: 2, options: { lr: 0.4 } }, { param: 0, options: { eps: 1e-7 } }]);
    assert.deepEqual(dict.tensors.map((t) => [t.length, t.step, t.states.map((s) => s.format)]), [
      [9000, 1, ['blockwise8', 'blockwise8']],
      [100, 1, ['float32', 'float32']],
      [5000, 0, []],
    ]);
    assert.throws(() => book.stateDict([]), /got 0 tensor entries for 3 parameters/);
    // Into another book with the same layout (other handles): everything comes back.
    const other = namedBook();
    other.book.commit(other.book.parse(dict), (slot, t) => {
      slot.state = t.states;
      slot.clip = t.clip;
    });
    assert.deepEqual(other.book.stateDict(other.book.slots.map(storedParts)), dict);
    assert.equal(other.book.optionsFor(other.c).lr, 0.4);
    assert.equal(other.a.step, 1);
  });

  test('parseStateDict rejects a checkpoint of another class, layout or content, naming the problem', () => {
    const { book, a } = namedBook();
    a.state = book.createStores(a);
    book.advance(a);
    const dict = book.stateDict(book.slots.map(storedParts));
    const layout = book.layout();
    const bad = (edit: (d: typeof dict) => void) => {
      const d = structuredClone(dict);
      edit(d);
      return d;
    };
    const who = 'T.load';
    assert.throws(() => parseStateDict(null, layout, who), /^Error: T.load: expected a state dict object/);
    assert.throws(() => parseStateDict(bad((d) => ((d as { format: string }).format = 'x')), layout, who), /not a bitopt optimizer state/);
    assert.throws(() => parseStateDict(bad((d) => (d.optimizer = 'Adam')), layout, who), /state dict is from Adam \(rule 'adam'\), this optimizer is Adam8bit/);
    assert.throws(() => parseStateDict(dict, { ...layout, rule: lion }, who), /this optimizer is Adam8bit \(rule 'lion'\)/);
    assert.throws(() => parseStateDict(dict, { ...layout, groupSizes: [3] }, who), /1 parameter groups|has 2 parameter groups, this optimizer has 1/);
    assert.throws(() => parseStateDict(dict, { ...layout, groupSizes: [1, 2] }, who), /group 0 has 2 parameters in the state dict, 1 here/);
    assert.throws(() => parseStateDict(dict, { ...layout, lengths: [9000, 100] }, who), /state dict has 3 tensors, this optimizer has 2 parameters/);
    assert.throws(() => parseStateDict(dict, { ...layout, lengths: [9001, 100, 5000] }, who), /tensor 0: state is for 9000 elements but the parameter has 9001/);
    assert.throws(() => parseStateDict(bad((d) => d.overrides.push({ param: 7, options: {} })), layout, who), /override for unknown parameter 7/);
    assert.throws(() => parseStateDict(bad((d) => (d.groups[1].options = { lr: -1 })), layout, who), /Adam8bit \(group 1\): lr must be/);
    assert.throws(() => parseStateDict(bad((d) => (d.tensors[0].states[0] as { codes: Uint8Array }).codes = new Uint8Array(3)), layout, who), /tensor 0\.states\[0\]\.codes: expected 9000 values, got 3/);
    // A failed parse changed nothing.
    assert.deepEqual(book.stateDict(book.slots.map(storedParts)), dict);
  });

  test('paramStateDict: one parameter\'s checkpoint, loadable into a one-parameter optimizer', () => {
    const { book, a, c } = namedBook();
    book.override(c, { optimBits: 32 });
    c.state = book.createStores(c);
    book.advance(c);
    book.advance(c);
    void a;
    const dict = book.stateDict(book.slots.map(storedParts));
    const one = paramStateDict(dict, 2);
    const inForce = (o: object) => ({ ...adam.defaults, optimBits: 8, min8bitSize: 4096, percentileClipping: 100, allow4bitWithoutParity: false, lr: 0.1, weightDecay: 0.5, ...o });
    assert.deepEqual(one.groups, [{ options: inForce({}), params: [0] }]);
    assert.deepEqual(one.overrides, [{ param: 0, options: { optimBits: 32 } }]);
    assert.equal(one.tensors[0], dict.tensors[2]);
    assert.deepEqual(paramStateDict(dict, 0).groups, [{ options: inForce({ lr: 0.2 }), params: [0] }]);
    const parsed = parseStateDict(one, { rule: adam, className: 'Adam8bit', classDefaults: { optimBits: 8 }, groupSizes: [1], lengths: [5000] }, 'x');
    assert.equal(parsed.tensors[0].step, 2);
    const cpu = new Adam8bit([new Float32Array(5000)]);
    cpu.loadStateDict(one);
    assert.equal(cpu.stepCount(0), 2);
    assert.deepEqual(cpu.stateDict().tensors[0], dict.tensors[2]);
  });
});

describe('describeOptimizerClass: a class\'s identity without building an optimizer', () => {
  test('rule, name and class defaults of the built-in classes', () => {
    assert.deepEqual(describeOptimizerClass(Adam8bit), { rule: adam, className: 'Adam8bit', classDefaults: { optimBits: 8 } });
    assert.deepEqual(describeOptimizerClass(AdamW), { rule: adam, className: 'AdamW', classDefaults: { optimBits: 32, weightDecay: 1e-2 } });
    assert.equal(describeOptimizerClass(RMSprop).rule, rmsprop);
    assert.equal(describeOptimizerClass(Lion8bit).className, 'Lion8bit');
  });
  test('a subclass\'s constructor stops at super(): nothing after it runs, no instance exists', () => {
    let ran = 0;
    class Counting extends SGD8bit {
      constructor(...args: ConstructorParameters<typeof SGD8bit>) {
        super(...args);
        ran++;
      }
    }
    assert.equal(describeOptimizerClass(Counting).className, 'SGD8bit');
    assert.equal(ran, 0);
    new Counting([new Float32Array(4)]);
    assert.equal(ran, 1);
    class NotOne {}
    assert.throws(() => describeOptimizerClass(NotOne as never), /NotOne is not a bitopt optimizer class/);
  });
});

describe('the default CPU kernel is injected', () => {
  /** Counts the jobs of a reference kernel. */
  const counting = () => {
    const ref = createReferenceKernel();
    const k = { name: 'counting', jobs: 0, update: (j: Parameters<CpuKernel['update']>[0]) => (k.jobs++, ref.update(j)), directionNorms: ref.directionNorms };
    return k;
  };
  test('optimizers take the registered factory\'s kernel; without one, the reference kernel', async () => {
    const made: ReturnType<typeof counting>[] = [];
    const previous = setDefaultCpuKernelFactory(() => {
      const k = counting();
      made.push(k);
      return k;
    });
    try {
      const p = new Float32Array(300).fill(1);
      const opt = new Adam([p], { lr: 0.1 });
      await opt.step([new Float32Array(300).fill(1)]);
      opt.stepSync([new Float32Array(300).fill(1)]);
      assert.equal(made.length, 1, 'one kernel per optimizer, made at its first step');
      assert.equal(made[0].jobs, 2);
      // No factory: the reference kernel, same numbers as an explicit reference kernel.
      setDefaultCpuKernelFactory(null);
      const q = new Float32Array(300).fill(1);
      const r = new Float32Array(300).fill(1);
      const plain = new Adam([q], { lr: 0.1 });
      const ref = new Adam([r], { lr: 0.1 });
      ref.setKernel(createReferenceKernel());
      plain.stepSync([new Float32Array(300).fill(1)]); // the reference kernel is synchronous
      ref.stepSync([new Float32Array(300).fill(1)]);
      assert.deepEqual(q, r);
      assert.ok(q[0] < 1);
      assert.equal(made.length, 1);
      assert.throws(() => setDefaultCpuKernelFactory({} as never), /expected a function/);
    } finally {
      setDefaultCpuKernelFactory(previous);
    }
  });

  test('src/optim imports no kernel implementation but the reference loop (the kernel contract lives in optim)', () => {
    const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src');
    const files = (function walk(dir: string): string[] {
      return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
    })(join(root, 'optim'));
    const upward: string[] = [];
    for (const f of files) {
      for (const m of readFileSync(f, 'utf8').matchAll(/^\s*(?:import|export)\b[^'"]*from\s+'([^']+)'/gm)) {
        const target = relative(root, resolve(dirname(f), m[1]));
        if (target.startsWith('kernels') && target !== join('kernels', 'cpu', 'reference.js')) upward.push(`${relative(root, f)} → ${target}`);
      }
    }
    assert.ok(files.length > 5);
    assert.deepEqual(upward, []);
  });
});
