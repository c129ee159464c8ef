/**
 * `bitopt demo --task capacity` with a small artificial budget: tf.train.adam's next size up
 * fails with the out-of-memory error (caught, reported), bitopt's Adam8bit trains a larger
 * model in the same budget with a falling loss and the state docs/architecture.md specifies,
 * and the report renders the section. Also the model family's sizes and the CLI's flag errors.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { capacityCommand } from '../src/demo/capacity/command.js';
import { mlpConfig, mlpParams, mlpShapes, widthForParams, WIDTH_STEP } from '../src/demo/capacity/model.js';
import type { CapacityResults } from '../src/demo/capacity/run-capacity.js';
import { runTrialProcess } from '../src/demo/capacity/search.js';
import { count } from '../src/demo/format.js';

const BUDGET = 24 * 1024 * 1024;

/** Adam8bit's state per docs/architecture.md: tensors of ≥ 4096 elements 2 codes + 2 float32 absmax per 256-block, smaller ones two float32 states. */
function adam8bitStateBytes(width: number): number {
  return mlpShapes(mlpConfig(width)).reduce((a, [r, k]) => {
    const n = r * k;
    return a + (n >= 4096 ? 2 * n + 2 * 4 * Math.ceil(n / 256) : 8 * n);
  }, 0);
}

describe('capacity: the model family', () => {
  it('counts parameters by hand and inverts the count to a width', () => {
    // width 16: 64·16 + 3·16·16 + 16·16
    assert.equal(mlpParams(mlpConfig(16)), 1024 + 768 + 256);
    for (const w of [16, 592, 1328, 4096]) {
      assert.equal(widthForParams(mlpParams(mlpConfig(w))), w);
      if (w > WIDTH_STEP) assert.equal(widthForParams(mlpParams(mlpConfig(w)) - 1), w - WIDTH_STEP);
    }
    // Never below one step, even for a count no width reaches.
    assert.equal(widthForParams(1), WIDTH_STEP);
  });
});

describe('capacity: a trial process', () => {
  it('turns a budget overrun into an out-of-memory result, not a crash', async () => {
    const r = await runTrialProcess({ optimizer: 'tf.train.adam', width: 512, steps: 2, lr: 1e-4, seed: 1, wall: 'tfjs', budgetBytes: 2 * 1024 * 1024 });
    assert.equal(r.outcome, 'oom');
    assert.equal(r.oomMemory, 'tfjs-budget');
    assert.match(r.error!, /^OutOfMemoryError: out of memory: \d+ more bytes of tfjs tensors exceed the budget of 2097152/);
    assert.ok(r.memory!.tfjs.peakLiveBytes <= 2 * 1024 * 1024);
  });
});

describe('capacity: a search under a small budget', () => {
  let c: CapacityResults;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bitopt-capacity-'));
    ({ results: c } = await capacityCommand({
      optimizers: ['tf.train.adam', 'bitopt.adam8bit'],
      walls: ['tfjs'],
      budgetBytes: BUDGET,
      steps: 12,
      probeSteps: 2,
      tolerance: 0.25,
      progress: false,
      command: 'test',
      log: () => {},
      out: dir,
    }));
  });

  it('tf.train.adam: the next size up fails with the out-of-memory error', () => {
    const s = c.searches.find((x) => x.optimizer === 'tf.train.adam')!;
    assert.ok(s.largest && s.firstFailing);
    assert.equal(s.largest.outcome, 'ok');
    assert.equal(s.firstFailing.outcome, 'oom');
    assert.equal(s.firstFailing.oomMemory, 'tfjs-budget');
    assert.match(s.firstFailing.error!, /OutOfMemoryError: out of memory/);
    assert.ok(s.firstFailing.params > s.largest.params);
    assert.ok(s.firstFailing.params <= 1.25 * s.largest.params || s.firstFailing.job.width - s.largest.job.width === WIDTH_STEP);
    // The peak it reached stays under the budget: the guard refused the allocation that would not fit.
    assert.ok(s.firstFailing.memory!.tfjs.peakLiveBytes <= BUDGET);
  });

  it('bitopt Adam8bit trains at least 1.8× the parameters, the loss falls, the state is the format', () => {
    const adam = c.searches.find((x) => x.optimizer === 'tf.train.adam')!.largest!;
    const s = c.searches.find((x) => x.optimizer === 'bitopt.adam8bit')!;
    const l = s.largest!;
    assert.ok(l.params >= 1.8 * adam.params, `${l.params} vs ${adam.params}`);
    assert.equal(s.firstFailing?.outcome, 'oom');
    assert.equal(l.losses.length, 12);
    const tail = l.losses.slice(-3).reduce((a, b) => a + b, 0) / 3;
    assert.ok(tail < 0.8 * l.losses[0], `loss ${l.losses[0]} → ${tail}`);
    assert.equal(l.memory!.stateBytes, adam8bitStateBytes(l.job.width));
    // The state lives in bitopt's own memory, not in tfjs's tensors.
    assert.ok(l.memory!.bitoptKernelBytes >= l.memory!.stateBytes);
    assert.ok(l.memory!.tfjs.peakLiveBytes <= BUDGET);
  });

  it('writes the results and renders the section in the report', () => {
    const saved = JSON.parse(readFileSync(join(dir, 'capacity-results.json'), 'utf8')) as CapacityResults;
    assert.equal(saved.searches.length, 2);
    const html = readFileSync(join(dir, 'index.html'), 'utf8');
    const section = html.slice(html.indexOf('<h2>A bigger model in the same memory, trained</h2>'));
    assert.ok(section.length > 100, 'the capacity section is in the report');
    for (const s of c.searches) assert.ok(section.includes(`${count(s.largest!.params)} (width ${s.largest!.job.width})`));
    // One loss curve per largest run, one point per step, falling (SVG y grows downwards).
    const curves = [...section.matchAll(/<path class="curve" data-series="([^"]*)" d="([^"]*)"/g)];
    for (const s of c.searches) {
      const path = curves.find((m) => m[1].startsWith(s.optimizer));
      assert.ok(path, `a curve for ${s.optimizer}`);
      const ys = [...path[2].matchAll(/[ML][\d.-]+,([\d.-]+)/g)].map((m) => Number(m[1]));
      assert.equal(ys.length, 12);
      assert.ok(ys.at(-1)! > ys[0]);
    }
    assert.match(section, /out of memory/);
  });
});

describe('capacity: the command line', () => {
  it('rejects a bad budget and a backend other than wasm', async () => {
    const run = promisify(execFile);
    const cli = join(import.meta.dirname, '..', 'src', 'cli', 'index.ts');
    for (const [args, message] of [
      [['--budget-mib', '-3'], /--budget-mib: expected a number of MiB/],
      [['--tf-backend', 'cpu'], /--tf-backend must be wasm/],
    ] as const) {
      const r = await run(process.execPath, ['--import', 'tsx', cli, 'demo', '--task', 'capacity', ...args], { cwd: join(import.meta.dirname, '..') }).catch((e: { stderr: string }) => e);
      assert.match((r as { stderr: string }).stderr, message);
    }
  });
});
