/**
 * `bitopt demo --jobs N`: the demo's training runs in N child processes at once. tfjs's wasm
 * backend uses one core per process, so on a machine with several cores this divides the wall
 * time; every run is seeded on its own, so results are the same as one process gives.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OptimizerSpec } from './optimizers.js';
import type { LmSize, TaskId } from './tasks.js';
import type { TfBackend } from './backend.js';
import type { RunResult } from './train.js';

export interface RunJob {
  index: number;
  taskId: TaskId;
  spec: OptimizerSpec;
  seed: number;
  steps: number;
}

/** What every worker needs to rebuild the parent's setting. */
export interface WorkerSetup {
  tfBackend: TfBackend;
  via: 'core' | 'tfjs';
  lmSize?: LmSize;
}

export type ParentMessage = { type: 'run'; job: RunJob; setup: WorkerSetup } | { type: 'exit' };
export type WorkerMessage =
  | { type: 'step'; index: number; step: number; loss: number }
  | { type: 'done'; index: number; result: RunResult }
  | { type: 'error'; index: number; message: string };

export interface PoolEvents {
  onStart(job: RunJob): void;
  onStep(job: RunJob, step: number, loss: number): void;
  onDone(job: RunJob, result: RunResult): void;
}

/**
 * The worker's file next to this one: .ts under tsx (tests), .js in the built package. A
 * single-file bundle (scripts/bundle-device-demo.mjs) names its worker bundle in
 * BITOPT_DEMO_WORKER.
 */
function workerPath(): string {
  if (process.env.BITOPT_DEMO_WORKER) return process.env.BITOPT_DEMO_WORKER;
  return fileURLToPath(new URL(`./run-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url));
}

/** Runs `jobs` on `workers` child processes; results come back in the jobs' order. */
export async function runInWorkers(jobs: RunJob[], setup: WorkerSetup, workers: number, events: PoolEvents): Promise<RunResult[]> {
  const results: RunResult[] = new Array(jobs.length);
  const queue = [...jobs];
  const children: ChildProcess[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      let pending = jobs.length;
      if (pending === 0) return resolve();
      const next = (child: ChildProcess) => {
        const job = queue.shift();
        if (!job) return;
        events.onStart(job);
        child.send({ type: 'run', job, setup } satisfies ParentMessage);
      };
      for (let w = 0; w < Math.min(workers, jobs.length); w++) {
        // 'advanced' serialization keeps NaN and Infinity in the results (a diverged run).
        const child = fork(workerPath(), [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        children.push(child);
        child.on('message', (m: WorkerMessage) => {
          const job = jobs[m.index];
          if (m.type === 'step') events.onStep(job, m.step, m.loss);
          else if (m.type === 'error') reject(new Error(`demo worker, run ${job.taskId} ${job.spec.id} seed ${job.seed}: ${m.message}`));
          else {
            results[m.index] = m.result;
            events.onDone(job, m.result);
            if (--pending === 0) resolve();
            else next(child);
          }
        });
        child.on('exit', (code) => {
          if (pending > 0 && code !== 0) reject(new Error(`a demo worker exited with code ${code} before its runs finished`));
        });
        next(child);
      }
    });
  } catch (e) {
    for (const c of children) c.kill();
    throw e;
  }
  for (const c of children) if (c.connected) c.send({ type: 'exit' } satisfies ParentMessage);
  return results;
}
