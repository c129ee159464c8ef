/**
 * Reliability: determinism on the CPU. Same inputs → the same checkpoint bytes and parameter
 * bits across runs (fresh optimizers, and a separate process) and across thread counts (1, 2,
 * 3 worker threads, tensors split between them) of the WebAssembly kernel, in both precisions,
 * for an 8-bit, a 32-bit and a trust-ratio rule with percentile clipping and non-finite
 * gradient elements.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as bitopt from '../src/index.js';
import type { CpuKernel, Optimizer } from '../src/index.js';
import { createWasmKernel, wasmKernelsSupported } from '../src/kernels/cpu/index.js';
import { randn, rng } from './helpers/float64-rules.js';

const CLASSES: [string, Record<string, unknown>][] = [
  ['Adam8bit', { percentileClipping: 90 }],
  ['AdEMAMix', {}],
  ['LAMB8bit', { maxUnorm: 0.5 }],
];

/** Trains for 5 steps; returns the sha256 of the serialized checkpoint and of the parameters. */
async function run(name: string, options: Record<string, unknown>, kernel: CpuKernel | null): Promise<string> {
  const rand = rng(42);
  const ps = [randn(300_001, rand), randn(4099, rand)];
  const cls = (bitopt as unknown as Record<string, new (p: Float32Array[], o: object) => Optimizer<any>>)[name];
  const opt = new cls(ps, { lr: 1e-2, ...options });
  if (kernel) opt.setKernel(kernel);
  for (let t = 0; t < 5; t++) {
    const gs = ps.map((p) => randn(p.length, rand));
    gs[0][17 * t] = [NaN, Infinity, -Infinity][t % 3];
    await opt.step(gs);
  }
  const h = createHash('sha256').update(bitopt.serializeStateDict(opt.stateDict()));
  for (const p of ps) h.update(new Uint8Array(p.buffer));
  return h.digest('hex');
}

// The child process of the last test imports run() from here without the tests.
const child = process.env.BITOPT_DETERMINISM_CHILD === '1';
describe('reliability: CPU determinism', { skip: child || (!wasmKernelsSupported() && 'WebAssembly SIMD/threads unavailable') }, () => {
  for (const [name, options] of CLASSES) {
    it(`${name}: same bytes across runs and across 1, 2, 3 threads (both precisions)`, async (t) => {
      let compared = 0;
      for (const precision of ['exact', 'float32'] as const) {
        const hashes: string[] = [];
        for (const threads of [1, 2, 3, 1, 3]) {
          const k = createWasmKernel({ threads, precision, minParallelSize: 1024 });
          await k.ready();
          hashes.push(await run(name, options, k));
        }
        assert.equal(new Set(hashes).size, 1, `${precision}: ${hashes.join(' ')}`);
        compared += hashes.length;
        if (precision === 'exact' && name !== 'LAMB8bit') assert.equal(hashes[0], await run(name, options, bitopt.createReferenceKernel()), 'exact = reference');
      }
      t.diagnostic(`${compared} runs compared (threads 1, 2, 3, 1, 3 × 2 precisions), all identical`);
    });
  }

  it('same bytes in a separate process (default kernel)', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bitopt-det-'));
    const script = join(dir, 'run.mts');
    const here = new URL('.', import.meta.url).pathname;
    writeFileSync(
      script,
      `import { run } from ${JSON.stringify(join(here, 'reliability-determinism.test.ts'))};\n` +
        `process.stdout.write(await run('Adam8bit', { percentileClipping: 90 }, null));\nprocess.exit(0);\n`,
    );
    const other = execFileSync(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, BITOPT_DETERMINISM_CHILD: '1' }, encoding: 'utf8' }).trim();
    assert.equal(other, await run('Adam8bit', { percentileClipping: 90 }, null));
  });
});

export { run };
