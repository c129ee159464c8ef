/**
 * Worker threads for the WebAssembly kernels (Node's worker_threads). Every worker instantiates
 * the same module over the same shared memory. A job is split into block-aligned chunks that
 * threads claim one at a time from a shared counter (compare-and-swap), the calling thread
 * included, which then waits (Atomics.wait) until every claimed chunk is finished. So a step
 * stays synchronous, needs no message per call, and a worker that is slow to wake (a busy
 * machine) or not started yet simply claims fewer chunks: it never holds the step up, and the
 * result is the same whoever runs which chunk.
 *
 * Workers are unref'd, so they never keep the process alive.
 */
import type { WasmRuntime } from './wasm-runtime.js';

// Control words (Int32Array over shared memory).
const SEQ = 0; // bumped per job: wakes the workers
const CLAIM = 1; // (job tag << 16) | next chunk; next = 0xffff when closed
const FINISHED = 2; // chunks done in the current job
const TOTAL = 3; // chunks in the current job
const DESC = 4; // job descriptor address
const FAILED = 5;
const READY = 6; // workers started
const CLOSED = 0xffff;
/** Polls of the job counter a worker makes before it sleeps (a few tens of microseconds). */
const SPIN = 20000;
/** Most chunks per job (the claim counter's 16 bits, minus the closed marker). */
export const MAX_CHUNKS = 0xfffe;

/** The worker: plain CommonJS, no imports from this package (it runs without loaders). */
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, ctlPtr } = workerData;
const instance = new WebAssembly.Instance(module, { env: { memory, abort() { throw new Error('bitopt wasm kernel aborted'); } } });
const run = instance.exports.run;
const ctl = new Int32Array(memory.buffer, ctlPtr, 8);
const claimLoop = (${claimLoop.toString()});
let seen = Atomics.load(ctl, ${SEQ});
Atomics.add(ctl, ${READY}, 1);
for (;;) {
  claimLoop(ctl, run);
  // Jobs of a staged tensor follow each other within microseconds: spin briefly before sleeping.
  for (let i = 0; i < ${SPIN} && Atomics.load(ctl, ${SEQ}) === seen; i++);
  Atomics.wait(ctl, ${SEQ}, seen);
  seen = Atomics.load(ctl, ${SEQ});
}
`;

/**
 * Claims and runs chunks of the current job (from the claim counter up to TOTAL) until none is left (shared by the calling thread
 * and the workers; self-contained so that its source can be the workers' too). Returns the
 * first error a chunk threw, after counting that chunk as finished.
 */
function claimLoop(ctl: Int32Array, run: (desc: number, chunk: number) => void): unknown {
  let error: unknown = null;
  for (;;) {
    const w = Atomics.load(ctl, 1);
    const next = w & 0xffff;
    if (next >= Atomics.load(ctl, 3)) return error;
    if (Atomics.compareExchange(ctl, 1, w, w + 1) !== w) continue;
    try {
      run(Atomics.load(ctl, 4), next);
    } catch (e) {
      Atomics.store(ctl, 5, 1);
      error ??= e;
    }
    Atomics.add(ctl, 2, 1);
    Atomics.notify(ctl, 2);
  }
}

interface NodeWorker {
  unref(): void;
  on(event: string, listener: (arg: unknown) => void): void;
}
interface WorkerThreadsModule {
  Worker: new (source: string, options: Record<string, unknown>) => NodeWorker;
}

/** node:worker_threads when running in Node (synchronously), else null. */
function workerThreads(): WorkerThreadsModule | null {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  try {
    return (proc?.getBuiltinModule?.('node:worker_threads') as WorkerThreadsModule | undefined) ?? null;
  } catch {
    return null;
  }
}

export class ThreadPool {
  private readonly ctl: Int32Array;
  private readonly ctlPtr: number;
  /** Workers started (running or still starting). */
  private started = 0;
  private broken = false;
  private tag = 0;

  constructor(private readonly runtime: WasmRuntime) {
    this.ctlPtr = runtime.alloc(64);
    this.ctl = runtime.i32(this.ctlPtr, 8);
    this.ctl.fill(0);
    Atomics.store(this.ctl, CLAIM, CLOSED);
  }

  /** Threads that exist, the calling thread included (workers may still be starting). */
  get size(): number {
    return this.broken ? 1 : this.started + 1;
  }

  /** Starts workers in the background until `threads` (calling thread included) exist; false where there are none. */
  grow(threads: number): boolean {
    if (this.broken) return false;
    if (this.started + 1 >= threads) return true;
    const wt = workerThreads();
    if (!wt) return false;
    while (this.started + 1 < threads) {
      this.started++;
      const worker = new wt.Worker(WORKER_SOURCE, {
        eval: true,
        execArgv: [],
        workerData: { module: this.runtime.module, memory: this.runtime.memory, ctlPtr: this.ctlPtr },
      });
      // A worker that fails to start never claims a chunk; jobs still finish without it.
      worker.on('error', () => (this.broken = true));
      worker.unref();
    }
    return true;
  }

  /** Resolves once `threads` threads are running (for tests and benchmarks). */
  async whenReady(threads: number): Promise<void> {
    if (!this.grow(threads)) return;
    for (let i = 0; Atomics.load(this.ctl, READY) < this.started && !this.broken; i++) {
      if (i > 3000) throw new Error('bitopt: worker threads did not start within 30 s');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Chunks from..to-1 of the job started by `start` and not yet joined (null when idle). */
  private pending: { desc: number; from: number; to: number; shared: boolean } | null = null;

  /** Runs chunks 0..chunks-1 of the job at `desc` on this thread and any workers; returns when all are done. */
  run(desc: number, chunks: number): void {
    this.start(desc, 0, Math.max(1, chunks));
    this.join();
  }

  /**
   * Starts chunks from..to-1 of the job at `desc` on the workers and returns at once: the
   * calling thread may do other work (stage the next window of a tensor) and must then `join`.
   * Everything the job reads must be in place before the call.
   */
  start(desc: number, from: number, to: number): void {
    if (this.pending) throw new Error('bitopt: a kernel job is still running (join it first)');
    if (to > MAX_CHUNKS || from < 0 || from >= to) throw new Error(`bitopt: chunks ${from}..${to - 1} are outside 0..${MAX_CHUNKS - 1}`);
    const shared = to - from > 1 && this.started > 0;
    this.pending = { desc, from, to, shared };
    if (!shared) return;
    const ctl = this.ctl;
    this.tag = (this.tag + 1) & 0x7fff;
    // The claim counter is closed between jobs, so a late worker cannot claim from this job
    // until everything it reads is in place.
    Atomics.store(ctl, TOTAL, to);
    Atomics.store(ctl, DESC, desc);
    Atomics.store(ctl, FINISHED, 0);
    Atomics.store(ctl, FAILED, 0);
    Atomics.store(ctl, CLAIM, (this.tag << 16) | from);
    Atomics.add(ctl, SEQ, 1);
    Atomics.notify(ctl, SEQ);
  }

  /** Runs what is left of the started job on this thread, waits for the workers' chunks, and rethrows a chunk's error. */
  join(): void {
    const job = this.pending;
    if (!job) return;
    this.pending = null;
    const { exports } = this.runtime;
    if (!job.shared) {
      for (let c = job.from; c < job.to; c++) exports.run(job.desc, c);
      return;
    }
    const ctl = this.ctl;
    const chunks = job.to - job.from;
    const error = claimLoop(ctl, exports.run);
    for (let done = Atomics.load(ctl, FINISHED); done < chunks; done = Atomics.load(ctl, FINISHED)) {
      Atomics.wait(ctl, FINISHED, done);
    }
    Atomics.store(ctl, CLAIM, (this.tag << 16) | CLOSED);
    if (error) throw error;
    if (Atomics.load(ctl, FAILED)) throw new Error('bitopt wasm kernel failed in a worker thread');
  }
}
