/**
 * `bitopt demo --task capacity`: "a bigger model in the same memory", run. For each optimizer
 * and wall, the capacity search (./search.ts) finds the largest wide MLP that trains in the
 * tfjs wasm backend's heap (4 GiB, or `budgetBytes`), or on tfjs's webgpu backend within a
 * budget on the device's live GPU buffers (./gpu-budget.ts), with the next size up failing with
 * an out-of-memory error; the results go to capacity-results.json and the HTML report.
 */
import { describeEnvironment } from '../environment.js';
import { bytes, count, textTable } from '../format.js';
import { createProgress } from '../progress.js';
import type { Environment } from '../results.js';
import { WASM32_LIMIT } from './heap.js';
import { FAMILY, mlpConfig, mlpParams } from './model.js';
import { searchCapacity, type SearchResult } from './search.js';
import type { CapacityBackend, CapacityOptimizer, Wall } from './trial.js';
import { cpuCopyBandwidthGBs } from '../copy-bandwidth.js';

export type { Wall } from './trial.js';

export interface CapacityResults {
  format: 'bitopt-capacity-results';
  env: Environment;
  /** Where the trials trained (absent in results written before the webgpu variant: 'wasm'). */
  backend?: CapacityBackend;
  /** The wall's size: the heap's 4 GiB or the artificial budget (webgpu: always the budget the user set). */
  budgetBytes: number;
  artificialBudget: boolean;
  family: typeof FAMILY;
  steps: number;
  probeSteps: number;
  /** Bisection stopped when the failing size was within this factor of the one that trained. */
  tolerance: number;
  lr: number;
  /** Copy bandwidth of this machine (a 64 MiB Float32Array `set`, median of 7: ../copy-bandwidth.ts), GB/s: the scale for the step times. */
  copyGBs: number;
  searches: SearchResult[];
  wallMs: number;
}

export interface CapacityOptions {
  optimizers: CapacityOptimizer[];
  /** Default 'wasm'. 'webgpu' needs `budgetBytes` and the wall 'gpu'. */
  backend?: CapacityBackend;
  walls: Wall[];
  budgetBytes?: number;
  steps: number;
  probeSteps?: number;
  tolerance?: number;
  lr?: number;
  seed?: number;
  /** Searches at once, each trial a process (default 1: each can take the heap's 4 GiB and more). */
  jobs?: number;
  progress: boolean;
  command: string;
  log(line: string): void;
}

/** tf.train.adam keeps nothing in bitopt's memory: its combined wall is its tfjs wall, searched once. */
function searchesToRun(o: CapacityOptions): { optimizer: CapacityOptimizer; wall: Wall }[] {
  const out: { optimizer: CapacityOptimizer; wall: Wall }[] = [];
  for (const wall of o.walls) for (const optimizer of o.optimizers) if (!(wall === 'combined' && optimizer === 'tf.train.adam' && o.walls.includes('tfjs'))) out.push({ optimizer, wall });
  return out;
}

export async function runCapacity(o: CapacityOptions): Promise<CapacityResults> {
  const t0 = performance.now();
  const probeSteps = o.probeSteps ?? 3;
  const tolerance = o.tolerance ?? 0.05;
  const lr = o.lr ?? 1e-4;
  const onGpu = o.backend === 'webgpu';
  if (onGpu && (o.budgetBytes === undefined || o.walls.some((w) => w !== 'gpu'))) throw new Error('capacity on webgpu: the wall is a budget on GPU buffers (walls ["gpu"] and budgetBytes)');
  if (!onGpu && o.walls.includes('gpu')) throw new Error("capacity: the 'gpu' wall needs the webgpu backend");
  const budget = o.budgetBytes ?? WASM32_LIMIT;
  const runs = searchesToRun(o);
  // The number of trials is not known ahead: the bar counts steps of an estimate (about 9 probes and one full run per search).
  const progress = createProgress(runs.length * (9 * probeSteps + o.steps), o.log, o.progress);
  const searches: SearchResult[] = new Array(runs.length);
  const one = async (i: number) => {
    const { optimizer, wall } = runs[i];
    // A combined wall holds at most what the tfjs wall held: start below that answer.
    const tfjsAnswer = searches.find((x) => x?.optimizer === optimizer && x.wall === 'tfjs')?.largest?.params;
    const label = (params: number) => `${optimizer} [${wall}] ${count(params)} params`;
    {
      searches[i] = await searchCapacity({
        optimizer,
        ...(onGpu ? { backend: 'webgpu' as const } : {}),
        wall,
        ...(o.budgetBytes !== undefined ? { budgetBytes: o.budgetBytes } : {}),
        startParams: wall === 'combined' && tfjsAnswer ? tfjsAnswer / 2 : Math.max(4096, Math.floor(budget / 64)),
        probeSteps,
        steps: o.steps,
        tolerance,
        lr,
        seed: o.seed ?? 1,
        onTrialStart: (job, params) => progress.startRun(label(params), job.steps),
        onStep: (job, step, loss) => progress.step(step, loss, label(mlpParams(mlpConfig(job.width)))),
        onTrialEnd: (r) =>
          progress.endRun(
            `  ${optimizer} [${wall} wall] width ${r.job.width} (${count(r.params)} params, ${r.job.steps} steps): ` +
              (r.outcome === 'ok' ? `trained, loss ${r.losses[0]?.toFixed(3)} → ${r.losses.at(-1)?.toFixed(3)}` : `${r.outcome.toUpperCase()} (${r.oomMemory ?? ''}) at ${r.failedAt}: ${r.error}`),
          ),
      });
    }
  };
  // `jobs` searches at once (each trial is a process of its own); the combined walls after the
  // tfjs walls, whose answers they start from.
  const pool = async (indices: number[]) => {
    const queue = [...indices];
    await Promise.all(Array.from({ length: Math.min(o.jobs ?? 1, queue.length) }, async () => {
      for (let i = queue.shift(); i !== undefined; i = queue.shift()) await one(i);
    }));
  };
  try {
    await pool(runs.flatMap((r, i) => (r.wall !== 'combined' ? [i] : [])));
    await pool(runs.flatMap((r, i) => (r.wall === 'combined' ? [i] : [])));
  } finally {
    progress.stop();
  }
  // The trials ran in child processes: the adapter name comes from them.
  const env = describeEnvironment(onGpu ? 'webgpu' : 'wasm', o.command);
  const gpu = searches.flatMap((s) => s.trials).find((t) => t.gpu)?.gpu;
  if (onGpu && gpu) Object.assign(env, { gpu, machine: env.machine.replace(/^GPU .*? \(WebGPU\) on /, `GPU ${gpu} (WebGPU) on `) });
  return {
    format: 'bitopt-capacity-results',
    env,
    ...(onGpu ? { backend: 'webgpu' as const } : {}),
    budgetBytes: budget,
    artificialBudget: onGpu || o.budgetBytes !== undefined,
    family: FAMILY,
    steps: o.steps,
    probeSteps,
    tolerance,
    lr,
    copyGBs: cpuCopyBandwidthGBs(),
    searches,
    wallMs: performance.now() - t0,
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

/** Median step time after the first (which also packs weights and creates the state). */
export function stepMs(r: { stepMs: number[] }): number {
  return median(r.stepMs.length > 1 ? r.stepMs.slice(1) : r.stepMs);
}

/** The baseline a search is compared with: tf.train.adam's largest in the tfjs wall. */
export function baselineParams(c: CapacityResults): number | undefined {
  return c.searches.find((s) => s.optimizer === 'tf.train.adam')?.largest?.params;
}

export function capacityRows(c: CapacityResults): string[][] {
  const base = baselineParams(c);
  return c.searches.map((s) => {
    const l = s.largest;
    const f = s.firstFailing;
    const m = l?.memory;
    return [
      s.optimizer,
      wallLabel(s.wall),
      l ? `${count(l.params)} (width ${l.job.width})` : 'none',
      l && base ? `${(l.params / base).toFixed(2)}×` : '–',
      f ? `${count(f.params)}: ${f.oomMemory ?? f.outcome} at ${f.failedAt}` : '–',
      m ? bytes(m.tfjs.heapBytes) : '–',
      m ? bytes(m.tfjs.peakLiveBytes) : '–',
      m ? bytes(m.bitoptKernelBytes) : '–',
      m ? bytes(m.stateBytes) : '–',
      m ? bytes(m.rssBytes) : '–',
      l ? stepMs(l).toFixed(0) : '–',
      l ? `${l.losses[0].toFixed(3)} → ${l.losses.at(-1)!.toFixed(3)}` : '–',
    ];
  });
}

/** The name a wall has in tables and the report. */
export function wallLabel(wall: Wall): string {
  return wall === 'tfjs' ? 'tfjs heap' : wall === 'combined' ? 'tfjs + bitopt' : 'GPU buffers';
}

/** The capacity table's columns on tfjs-wasm (the memory columns are the heap's and bitopt's kernel memory). */
export const CAPACITY_HEADER = ['optimizer', 'wall', 'largest that trains', 'vs tf.train.adam', 'next size up', 'tfjs heap', 'peak tfjs tensors', 'bitopt kernel memory', 'bitopt state', 'process RSS', 'ms/step', 'loss'];
/** The same columns on webgpu: the memory columns are GPU buffers counted at the device, at the peak. */
export const CAPACITY_HEADER_GPU = ['optimizer', 'wall', 'largest that trains', 'vs tf.train.adam', 'next size up', "tfjs's GPU buffers (with pool)", "tfjs's buffers in use", "bitopt's GPU buffers", 'bitopt state', 'process RSS', 'ms/step', 'loss'];

/** The header that goes with `capacityRows(c)`. */
export function capacityHeader(c: CapacityResults): string[] {
  return c.backend === 'webgpu' ? CAPACITY_HEADER_GPU : CAPACITY_HEADER;
}

/** One sentence naming the backend and the wall a run had. */
export function wallDescription(c: CapacityResults): string {
  if (c.backend === 'webgpu') return `tfjs-webgpu on ${c.env.gpu ?? 'a WebGPU adapter'}, a budget of ${bytes(c.budgetBytes)} on the device's live GPU buffers (tfjs's and bitopt's; tfjs's free pool is released before a buffer is refused)`;
  return c.artificialBudget ? `tfjs-wasm, an artificial budget of ${bytes(c.budgetBytes)} on tfjs's tensors` : `tfjs-wasm's heap (${bytes(c.budgetBytes)}, the wasm32 limit)`;
}

export function capacityTable(c: CapacityResults): string {
  return [
    `\nA bigger model in the same memory, trained — ${wallDescription(c)}; wide MLP (${c.family.hidden} hidden width × width layers, batch ${c.family.batch}), ${c.steps} steps at the largest size`,
    textTable(capacityHeader(c), capacityRows(c)),
    `  machine: ${c.env.machine}, copy bandwidth ${c.copyGBs.toFixed(1)} GB/s; the search took ${(c.wallMs / 1000).toFixed(0)} s`,
  ].join('\n');
}
