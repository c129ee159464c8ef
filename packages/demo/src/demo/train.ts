/** The training loop shared by every task and optimizer. */
import { paramCount } from './models/model.js';
import type { OptimizerFactory, OptimizerSpec, TrainOptimizer } from './optimizers.js';
import type { Evaluation, Task } from './tasks.js';
import { tf } from './tf.js';

export interface RunResult {
  task: Task['id'];
  spec: OptimizerSpec;
  seed: number;
  steps: number;
  params: number;
  /** Training-batch loss at every step. */
  trainLoss: number[];
  /** Evaluations at step 0, every `evalEvery` steps, and at the end. */
  evals: ({ step: number } & Evaluation)[];
  final: Evaluation;
  stateBytes: number;
  /** Peak bytes of live tfjs tensors during a training step (tf.profile). */
  peakTensorBytes: number;
  /** Bytes the optimizer holds outside tfjs (bitopt's float32 weight copy and its state). */
  offTensorBytes: number;
  msPerStep: number;
  /**
   * Each weight tensor: its size, whether its state is forced to 32-bit (StableEmbedding), and
   * (when the optimizer can say) the state format it got and that state's bytes at the end.
   */
  tensors?: { size: number; fullPrecision: boolean; format?: string; stateBytes?: number }[];
  /** Set when training diverged (non-finite loss); the run stops there. */
  diverged?: boolean;
}

export interface RunOptions {
  steps: number;
  seed: number;
  onStep?: (step: number, loss: number) => void;
  /** Called after every step with the optimizer (the ablation captures states through it). */
  onStepDone?: (step: number, optimizer: TrainOptimizer) => void | Promise<void>;
}

/**
 * The learning rate at `step` (1-based) of `steps`: a short linear warm-up, then cosine decay
 * to 10% of the peak, the schedule most transformer and MLP recipes use. Every optimizer of a
 * comparison gets the same schedule; annealing also makes the final loss a property of the
 * run rather than of its last few mini-batches.
 */
export function scheduledLearningRate(peak: number, step: number, steps: number): number {
  const warmup = Math.max(1, Math.round(0.05 * steps));
  if (step <= warmup) return (peak * step) / warmup;
  const progress = (step - warmup) / Math.max(1, steps - warmup);
  return peak * (0.1 + 0.45 * (1 + Math.cos(Math.PI * progress)));
}

/** The step whose memory is profiled: after the first, so lazily created state exists. */
const PROFILED_STEP = 2;

export async function trainRun(task: Task, spec: OptimizerSpec, factory: OptimizerFactory, options: RunOptions): Promise<RunResult> {
  const baselineBytes = tf.memory().numBytes;
  const model = task.createModel(options.seed);
  const optimizer = factory(spec, model);
  const nextBatch = task.batches(options.seed);
  const trainLoss: number[] = [];
  const evals: RunResult['evals'] = [{ step: 0, ...(await task.evaluate(model)) }];
  let peakTensorBytes = 0;
  let trainMs = 0;
  let diverged = false;
  try {
    for (let step = 1; step <= options.steps; step++) {
      const batch = nextBatch();
      optimizer.setLearningRate(scheduledLearningRate(spec.lr, step, options.steps));
      const t0 = performance.now();
      let loss: number;
      if (step === PROFILED_STEP) {
        let value = NaN;
        const info = await tf.profile(async () => {
          value = await optimizer.step(() => model.loss(batch));
        });
        loss = value;
        peakTensorBytes = Math.max(info.peakBytes, tf.memory().numBytes) - baselineBytes;
      } else {
        loss = await optimizer.step(() => model.loss(batch));
      }
      trainMs += performance.now() - t0;
      tf.dispose([batch.x, batch.y]);
      trainLoss.push(loss);
      options.onStep?.(step, loss);
      await options.onStepDone?.(step, optimizer);
      if (!Number.isFinite(loss)) {
        diverged = true;
        break;
      }
      if (step % task.evalEvery === 0 || step === options.steps) evals.push({ step, ...(await task.evaluate(model)) });
    }
    const final: Evaluation = diverged ? { loss: NaN } : evals[evals.length - 1];
    const states = await optimizer.tensorStates?.();
    return {
      task: task.id,
      spec,
      seed: options.seed,
      steps: options.steps,
      params: paramCount(model),
      tensors: model.variables.map((v, i) => ({
        size: v.size,
        fullPrecision: model.fullPrecision.has(v),
        ...(states ? { format: states[i].format, stateBytes: states[i].bytes } : {}),
      })),
      trainLoss,
      evals,
      final: { loss: final.loss, ...(final.accuracy !== undefined ? { accuracy: final.accuracy } : {}) },
      stateBytes: optimizer.stateBytes(),
      peakTensorBytes,
      offTensorBytes: optimizer.offTensorBytes(),
      msPerStep: trainMs / Math.max(1, trainLoss.length),
      ...(diverged ? { diverged } : {}),
    };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}
