/**
 * `bitopt ablation`: the paper's analysis on our own runs.
 * 1. Quantization error: Adam's states (m, v) are captured from a 32-bit Adam run at a few
 *    steps, then quantized and dequantized with every variant (dynamic/linear map ×
 *    block-wise/tensor-wise).
 * 2. Stability: the task is trained with 8-bit Adam under each variant over several seeds,
 *    next to 32-bit Adam; the spread of final losses shows which variants are unstable.
 */
import { describeEnvironment } from './environment.js';
import { bytes, textTable } from './format.js';
import { createOptimizerFactory, floatCopyOptimizer, weightCopies, type OptimizerFactory, type TrainOptimizer } from './optimizers.js';
import { createProgress } from './progress.js';
import { QUANT_VARIANTS, quantizationError, variantMap, type QuantVariant } from './quant-variants.js';
import type { AblationResults, QuantErrorRow } from './results.js';
import { stat } from './summary.js';
import { createTask, type Task, type TaskId } from './tasks.js';
import { initTf, type TfBackend } from './backend.js';
import { trainRun } from './train.js';
import { VariantAdam } from './variant-adam.js';

export interface AblationOptions {
  task: TaskId;
  seeds: number[];
  steps?: number;
  /** Steps at which states are captured (default: 10%, 50%, 100% of the run). */
  captureAt?: number[];
  tfBackend: TfBackend;
  command: string;
  log: (line: string) => void;
  progress?: boolean;
  /** Stability variants to train (default: all). */
  variants?: string[];
}

export async function runAblation(o: AblationOptions): Promise<AblationResults> {
  const backend = await initTf(o.tfBackend, o.log);
  const task = createTask(o.task);
  const steps = o.steps ?? task.defaultSteps;
  const lr = task.lr.adam;
  const captureAt = o.captureAt ?? [Math.max(1, Math.round(steps / 10)), Math.round(steps / 2), steps];
  const variants = QUANT_VARIANTS.filter((v) => !o.variants || o.variants.includes(v.name));
  const trainVariants = [
    { variant: 'Adam 32-bit', description: 'float32 states (bitopt Adam)' },
    ...variants.map((v) => ({ variant: `8-bit ${v.name}`, description: `Adam, ${v.map} map, ${v.blockSize ? `blocks of ${v.blockSize}` : 'one absmax per tensor'}`, quant: v })),
  ];
  const total = steps + trainVariants.length * o.seeds.length * steps;
  o.log(`bitopt ablation on ${task.id} (${task.title}): ${steps} steps, seeds ${o.seeds.join(', ')}, tfjs '${backend}' backend`);
  const progress = createProgress(total, o.log, o.progress !== false);
  const factory = createOptimizerFactory();
  try {
    // 1. Quantization error of real states.
    progress.startRun(`${task.id} Adam 32-bit (capturing states)`, steps);
    const quantError = await captureQuantError(task, { steps, seed: o.seeds[0], captureAt, variants, onStep: (s, l) => progress.step(s, l) });
    progress.endRun(`  captured Adam states at steps ${captureAt.join(', ')}`);

    // 2. Stability over seeds.
    const stability: AblationResults['stability'] = [];
    for (const tv of trainVariants) {
      const finals: number[] = [];
      const curves: number[][] = [];
      let diverged = 0;
      for (const seed of o.seeds) {
        progress.startRun(`${tv.variant} seed ${seed}`, steps);
        const quant = 'quant' in tv ? tv.quant : undefined;
        const r = await trainRun(
          task,
          { id: tv.variant, family: 'adam', kind: 'core', bits: quant ? 8 : 32, lr },
          quant ? variantAdamFactory(quant) : factory,
          { steps, seed, onStep: (s, l) => progress.step(s, l) },
        );
        if (r.diverged) diverged++;
        finals.push(r.final.loss);
        curves.push(r.trainLoss);
        progress.endRun(`  ${tv.variant} seed ${seed}: final loss ${r.final.loss.toFixed(4)}, state ${bytes(r.stateBytes)}${r.diverged ? ' (DIVERGED)' : ''}`);
      }
      const n = Math.min(...curves.map((c) => c.length));
      const curve = Array.from({ length: n }, (_, i) => curves.reduce((a, c) => a + c[i], 0) / curves.length);
      stability.push({ variant: tv.variant, description: tv.description, finalLoss: finals, diverged, curve });
    }
    return {
      format: 'bitopt-ablation-results',
      env: describeEnvironment(backend, o.command),
      task: { id: task.id, title: task.title, description: task.description, dataSource: task.dataSource, lossLabel: task.lossLabel, steps },
      seeds: o.seeds,
      quantError,
      stability,
    };
  } finally {
    progress.stop();
  }
}

/** Trains 32-bit Adam and quantizes its m and v (tensors the 8-bit optimizer would quantize) with each variant at `captureAt` steps. */
export async function captureQuantError(
  task: Task,
  o: { steps: number; seed: number; captureAt: number[]; variants: QuantVariant[]; onStep?: (step: number, loss: number) => void },
): Promise<QuantErrorRow[]> {
  const rows: QuantErrorRow[] = [];
  await trainRun(task, { id: 'Adam', family: 'adam', kind: 'core', bits: 32, lr: task.lr.adam }, createOptimizerFactory(), {
    steps: o.steps,
    seed: o.seed,
    ...(o.onStep ? { onStep: o.onStep } : {}),
    onStepDone: (step, opt) => {
      if (!o.captureAt.includes(step) || !opt.core) return;
      for (const t of opt.core.stateDict().tensors) {
        if (t.length < 4096) continue; // these stay float32 in the 8-bit optimizer too
        t.states.forEach((e, k) => {
          if (e.format !== 'float32') return;
          const signed = e.sign === 'signed';
          for (const v of o.variants) {
            rows.push({
              state: k === 0 ? 'm (signed)' : 'v (unsigned)',
              step,
              variant: v.name,
              elements: e.values.length,
              // The map's own rounding of v (no 'positive' rule), so the share zeroed shows what the paper's analysis shows.
              ...quantizationError(e.values, variantMap(v.map, signed), v.blockSize, signed ? 'sign' : 'none'),
            });
          }
        });
      }
    },
  });
  return rows;
}

/** An optimizer factory for 8-bit Adam with the variant's map and block layout. */
export function variantAdamFactory(quant: QuantVariant): OptimizerFactory {
  return (spec, model): TrainOptimizer => {
    const params = weightCopies(model);
    const full = new Set(params.filter((_, i) => model.fullPrecision.has(model.variables[i])));
    const opt = new VariantAdam(params, quant, { lr: spec.lr, fullPrecision: full });
    return floatCopyOptimizer(model, params, { step: (g) => opt.step(g), setLearningRate: (lr) => (opt.lr = lr), stateBytes: () => opt.stateBytes() });
  };
}

export function ablationTables(a: AblationResults): string {
  const out: string[] = [];
  const variants = [...new Set(a.quantError.map((r) => r.variant))];
  for (const state of ['m (signed)', 'v (unsigned)'] as const) {
    out.push(`\nQuantization error of Adam's ${state} states (${a.task.id}, steps ${[...new Set(a.quantError.map((r) => r.step))].join(', ')}, element-weighted)`);
    out.push(
      textTable(
        ['variant', 'rel. L2 error', 'mean rel. error', 'non-zeros → 0'],
        variants.map((v) => {
          const rs = a.quantError.filter((r) => r.variant === v && r.state === state);
          const w = rs.reduce((s, r) => s + r.elements, 0);
          const avg = (k: 'relL2' | 'meanRel' | 'zeroed') => rs.reduce((s, r) => s + r[k] * r.elements, 0) / w;
          return [v, avg('relL2').toExponential(2), avg('meanRel').toExponential(2), `${(100 * avg('zeroed')).toFixed(2)}%`];
        }),
      ),
    );
  }
  out.push(`\nFinal ${a.task.lossLabel} over seeds ${a.seeds.join(', ')} (${a.task.steps} steps)`);
  out.push(
    textTable(
      ['variant', 'mean', 'std', 'min', 'max', 'diverged'],
      a.stability.map((s) => {
        const ok = s.finalLoss.filter(Number.isFinite);
        const st = ok.length ? stat(ok) : undefined;
        return [s.variant, st?.mean.toFixed(4) ?? '-', st?.std.toFixed(4) ?? '-', st?.min.toFixed(4) ?? '-', st?.max.toFixed(4) ?? '-', String(s.diverged)];
      }),
    ),
  );
  return out.join('\n');
}
