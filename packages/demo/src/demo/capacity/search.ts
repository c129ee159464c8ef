/**
 * The capacity search: for one optimizer and one wall, the largest MLP (./model.ts) that trains,
 * found by real allocation. Parameter counts double from a size that surely fits until a trial
 * runs out of memory, then bisect between the last that trained and the first that did not
 * until they are within `tolerance`; the largest that trained is then trained again for the
 * full number of steps (the loss curve), stepping down if that longer run fails. Every trial is
 * a process of its own (./trial-worker.ts).
 */
import { fork } from 'node:child_process';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mlpConfig, mlpParams, widthForParams, WIDTH_STEP } from './model.js';
import type { CapacityBackend, CapacityOptimizer, TrialJob, TrialResult, Wall } from './trial.js';
import type { TrialMessage } from './trial-worker.js';

function workerPath(): string {
  return fileURLToPath(new URL(`./trial-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url));
}

/** Runs `job` in a fresh child process; a child killed from outside (the OS's OOM killer) is an 'oom' of the process. */
export function runTrialProcess(job: TrialJob, onStep: (step: number, loss: number) => void = () => {}): Promise<TrialResult> {
  return new Promise((resolve, reject) => {
    // 'advanced' keeps NaN (a diverged loss) in the results.
    const child = fork(workerPath(), [], { serialization: 'advanced', stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    let settled = false;
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.on('message', (m: TrialMessage) => {
      if (m.type === 'step') onStep(m.step, m.loss);
      else if (m.type === 'done') {
        settled = true;
        resolve(m.result);
      } else {
        settled = true;
        reject(new Error(`capacity trial ${job.optimizer} width ${job.width}: ${m.message}`));
      }
    });
    child.on('exit', (code, signal) => {
      if (settled) return;
      const params = mlpParams(mlpConfig(job.width));
      const why = signal ? `killed by ${signal}` : `exited with code ${code}`;
      // SIGKILL from outside is what the OS does when the process as a whole runs out of memory.
      const oom = signal === 'SIGKILL' || /out of memory|Aborted\(OOM\)/i.test(stderr);
      resolve({ job, params, outcome: oom ? 'oom' : 'error', ...(oom ? { oomMemory: 'process' as const } : {}), error: `the trial process ${why}${stderr ? `: ${stderr.trim().split('\n').slice(-3).join(' / ')}` : ''}`, failedAt: 'process', losses: [], stepMs: [] });
    });
    child.send(job);
  });
}

export interface SearchOptions {
  optimizer: CapacityOptimizer;
  /** Absent: 'wasm'. */
  backend?: CapacityBackend;
  wall: Wall;
  budgetBytes?: number;
  /** First size tried (parameters); it should fit. */
  startParams: number;
  /** Steps of each search trial: enough to reach the step's peak memory (the state exists from step 1). */
  probeSteps: number;
  /** Steps of the final run of the largest size (the loss curve). */
  steps: number;
  /** Stop bisecting when the failing size is within this factor of the one that trained. */
  tolerance: number;
  lr: number;
  seed: number;
  onTrialStart?(job: TrialJob, params: number): void;
  onStep?(job: TrialJob, step: number, loss: number): void;
  onTrialEnd?(r: TrialResult): void;
}

export interface SearchResult {
  optimizer: CapacityOptimizer;
  wall: Wall;
  /** The largest size that trained for the full steps. */
  largest?: TrialResult;
  /** The smallest size that ran out of memory (the next size up). */
  firstFailing?: TrialResult;
  /** Every trial, in the order run. */
  trials: TrialResult[];
}

const MAX_TRIALS = 40;

export async function searchCapacity(o: SearchOptions): Promise<SearchResult> {
  const trials: TrialResult[] = [];
  const run = async (width: number, steps: number): Promise<TrialResult> => {
    if (trials.length >= MAX_TRIALS) throw new Error(`capacity search ${o.optimizer}: no answer after ${MAX_TRIALS} trials`);
    const job: TrialJob = { optimizer: o.optimizer, ...(o.backend === 'webgpu' ? { backend: o.backend } : {}), width, steps, lr: o.lr, seed: o.seed, wall: o.wall, ...(o.budgetBytes !== undefined ? { budgetBytes: o.budgetBytes } : {}) };
    o.onTrialStart?.(job, mlpParams(mlpConfig(width)));
    const r = await runTrialProcess(job, (s, l) => o.onStep?.(job, s, l));
    trials.push(r);
    o.onTrialEnd?.(r);
    // A failure that is not out-of-memory is a bug, not a limit: stop and say so.
    if (r.outcome === 'error') throw new Error(`capacity search ${o.optimizer}, width ${width}: ${r.error}`);
    return r;
  };
  let lo: TrialResult | undefined;
  let hi: TrialResult | undefined;
  // Doubling: up from a size that should fit (down, if even that does not).
  let width = widthForParams(o.startParams);
  for (;;) {
    const r = await run(width, o.probeSteps);
    if (r.outcome === 'ok') {
      lo = r;
      if (hi) break;
      const next = widthForParams(2 * r.params);
      width = next > width ? next : width + WIDTH_STEP;
    } else {
      hi = r;
      if (lo) break;
      if (width === WIDTH_STEP) return { optimizer: o.optimizer, wall: o.wall, firstFailing: r, trials };
      width = Math.max(WIDTH_STEP, widthForParams(r.params / 2));
    }
  }
  return bisect(lo!, hi!, o, run, trials);
}

async function bisect(lo: TrialResult, hi: TrialResult, o: SearchOptions, run: (width: number, steps: number) => Promise<TrialResult>, trials: TrialResult[]): Promise<SearchResult> {
  for (;;) {
    // Bisection between the largest that trained and the smallest that did not.
    while (hi.params / lo.params > 1 + o.tolerance && hi.job.width - lo.job.width > WIDTH_STEP) {
      const mid = widthForParams((lo.params + hi.params) / 2);
      const w = mid > lo.job.width && mid < hi.job.width ? mid : lo.job.width + WIDTH_STEP;
      const r = await run(w, o.probeSteps);
      if (r.outcome === 'ok') lo = r;
      else hi = r;
    }
    // The full run at the largest size; memory that grows past the probe's steps fails here.
    const full: TrialResult = o.steps > o.probeSteps ? await run(lo.job.width, o.steps) : lo;
    if (full.outcome === 'ok') return { optimizer: o.optimizer, wall: o.wall, largest: full, firstFailing: hi, trials };
    hi = full;
    const smaller: TrialResult | undefined = trials.filter((t) => t.outcome === 'ok' && t.job.width < full.job.width).sort((a, b) => b.job.width - a.job.width)[0];
    if (!smaller) return { optimizer: o.optimizer, wall: o.wall, firstFailing: full, trials };
    lo = smaller;
  }
}
