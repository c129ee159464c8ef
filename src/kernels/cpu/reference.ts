/**
 * The reference CPU kernel: plain TypeScript, one fused pass per block (decode states,
 * update states and parameters, re-encode). It is the readable specification that faster
 * kernels are tested against, and the fallback where they are unavailable.
 */
import type { CpuKernel, DirectionNorms, UpdateJob } from '../../optim/kernel.js';

/** Per-state float32 scratch of one block, grown on demand and reused across calls. */
class Scratch {
  private arrays: Float32Array[] = [];
  get(count: number, blockSize: number): Float32Array[] {
    while (this.arrays.length < count) this.arrays.push(new Float32Array(blockSize));
    for (let k = 0; k < count; k++) {
      if (this.arrays[k].length < blockSize) this.arrays[k] = new Float32Array(blockSize);
    }
    return this.arrays;
  }
}

const isFiniteNumber = (x: number) => x - x === 0;

function forEachBlock(job: UpdateJob, scratch: Scratch, body: (start: number, n: number, s: Float32Array[]) => void, writeBack: boolean) {
  const { states, blockSize, param } = job;
  const s = scratch.get(states.length, blockSize);
  for (let start = 0; start < param.length; start += blockSize) {
    const n = Math.min(blockSize, param.length - start);
    for (let k = 0; k < states.length; k++) states[k].load(start, n, s[k]);
    body(start, n, s);
    if (writeBack) for (let k = 0; k < states.length; k++) states[k].store(start, n, s[k]);
  }
}

/** The reference CPU kernel: the readable TypeScript loop every other kernel is tested against (synchronous, any format). */
export function createReferenceKernel(): CpuKernel {
  const scratch = new Scratch();
  return {
    name: 'reference',
    update(job) {
      const { rule, param, grad, coefficients: c, gradScale } = job;
      forEachBlock(job, scratch, (start, n, s) => {
        for (let j = 0; j < n; j++) {
          const i = start + j;
          const g = grad[i] * gradScale;
          if (!isFiniteNumber(g)) {
            // A non-finite gradient element leaves its parameter alone and resets its state.
            for (let k = 0; k < s.length; k++) s[k][j] = 0;
            continue;
          }
          param[i] = rule.element(param[i], g, s, j, c);
        }
      }, true);
    },
    directionNorms(job): DirectionNorms {
      const { rule, param, grad, coefficients: c, gradScale } = job;
      if (!rule.direction) throw new Error(`rule '${rule.name}' has no direction()`);
      const direction = rule.direction;
      let updateSq = 0;
      let paramSq = 0;
      forEachBlock(job, scratch, (start, n, s) => {
        for (let j = 0; j < n; j++) {
          const p = param[start + j];
          paramSq += p * p;
          const g = grad[start + j] * gradScale;
          if (!isFiniteNumber(g)) continue;
          const u = Math.fround(direction(p, g, s, j, c));
          updateSq += u * u;
        }
      }, false);
      return { updateSq, paramSq };
    },
  };
}
