/** `bitopt demo`: trains each task with each optimizer variant and seed, then reports. */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { budgetReport } from './budget.js';
import { describeEnvironment } from './environment.js';
import { bytes, markdownTable, pct, textTable } from './format.js';
import { availableBits, className, createOptimizerFactory, FAMILIES, specLabel, type Bits, type Family, type OptimizerFactory, type OptimizerSpec } from './optimizers.js';
import { demoOptimizerFactory } from './adapter.js';
import { runInWorkers, type RunJob } from './parallel.js';
import { createProgress } from './progress.js';
import { renderReport } from './report/html.js';
import type { AblationResults, DemoResults, ReportData } from './results.js';
import { checks, compareTwins, remainderText, summarize, TARGETS, verdictText, type TwinComparison } from './summary.js';
import { createTask, type LmSize, type Task, type TaskId } from './tasks.js';
import { initTf, type TfBackend } from './backend.js';
import { trainRun, type RunResult } from './train.js';

export interface DemoOptions {
  tasks: TaskId[];
  families: Family[];
  seeds: number[];
  /** Steps per task; undefined = the task's default. */
  steps?: number;
  out: string;
  tfBackend: TfBackend;
  /**
   * Train TensorFlow.js's own Adam as a baseline (for the Adam family): on every task (true), on
   * none (false), or on the tasks listed (the CLI's default: MNIST only, where it costs little;
   * on the LM it would be a quarter of the LM's training time, and the claim compares each
   * low-bit run with its bitopt 32-bit twin).
   */
  tfjsBaseline: boolean | readonly TaskId[];
  /**
   * State precisions to train (default: every one the installed bitopt has for the family;
   * 32-bit, the twin every comparison needs, is always included).
   */
  bits?: Bits[];
  command: string;
  /** Size of the LM task's transformer (default 'small'). */
  lmSize?: LmSize;
  log: (line: string) => void;
  progress?: boolean;
  /** How bitopt's optimizers are driven: its Float32Array API ('core', default) or its tfjs adapter. */
  via?: 'core' | 'tfjs';
  /** Training runs at once, each in its own process (default 1: all in this process). */
  jobs?: number;
  /** Optimizer factory for the bitopt runs, instead of `via` (tests; one process only). */
  factory?: OptimizerFactory;
  adapterName?: string;
}

/**
 * The runs of a task: per family, tfjs's Adam (if asked), then bitopt at each precision that is
 * both wanted and available (the 32-bit twin always).
 */
export function specsFor(task: Task, families: Family[], tfjsBaseline: boolean, kind: OptimizerSpec['kind'] = 'core', bits?: Bits[]): OptimizerSpec[] {
  const specs: OptimizerSpec[] = [];
  for (const family of families) {
    const lr = task.lr[family];
    if (family === 'adam' && tfjsBaseline) specs.push({ id: 'tfjs-adam', family, kind: 'tfjs', bits: 32, lr });
    for (const b of availableBits(family)) {
      if (b === 32 || !bits || bits.includes(b)) specs.push({ id: className(family, b)!, family, kind, bits: b, lr });
    }
  }
  return specs;
}

/**
 * Every training run of a demo, in the order they start: per task and seed, the runs of
 * `specsFor` (the tfjs baseline where `o.tfjsBaseline` asks for it). With several processes
 * (`jobs` > 1) the costliest runs (steps × the task's msPerStep) come first, stably, so the order
 * within a task stays: the long LM runs then share the cores and the short MNIST runs fill the
 * gaps, instead of the last LM run training alone on one core while the other idles.
 */
export function planRuns(
  tasks: readonly Task[],
  o: Pick<DemoOptions, 'families' | 'seeds' | 'steps' | 'tfjsBaseline'>,
  kind: OptimizerSpec['kind'],
  bits: Bits[] | undefined,
  jobs: number,
): (RunJob & { task: Task })[] {
  return tasks
    .flatMap((task) => {
      const steps = o.steps ?? task.defaultSteps;
      const baseline = typeof o.tfjsBaseline === 'boolean' ? o.tfjsBaseline : o.tfjsBaseline.includes(task.id);
      return o.seeds.flatMap((seed) => specsFor(task, o.families, baseline, kind, bits).map((spec) => ({ task, taskId: task.id, spec, seed, steps })));
    })
    .sort((a, b) => (jobs > 1 ? b.steps * b.task.msPerStep - a.steps * a.task.msPerStep : 0))
    .map((p, index) => ({ ...p, index }));
}

export async function runDemo(o: DemoOptions): Promise<DemoResults> {
  const backend = await initTf(o.tfBackend, o.log);
  const via = o.via ?? 'core';
  const jobs = Math.max(1, Math.floor(o.jobs ?? 1));
  if (o.factory && jobs > 1) throw new Error('runDemo: a custom optimizer factory runs in one process (jobs 1)');
  // A custom factory serves the bitopt specs; tf.train.adam still serves the tfjs baseline.
  const factory = o.factory ? createOptimizerFactory(o.factory) : await demoOptimizerFactory(via);
  const adapterName = o.adapterName ?? (via === 'tfjs' ? 'bitopt/tfjs' : undefined);
  const kind = o.factory || via === 'tfjs' ? 'adapter' : 'core';
  const tasks = o.tasks.map((id) => createTask(id, { lmSize: o.lmSize }));
  const plan = planRuns(tasks, o, kind, o.bits, jobs);
  const where = jobs > 1 ? `, ${Math.min(jobs, plan.length)} at a time in separate processes` : '';
  o.log(`bitopt demo: ${plan.length} training runs (${tasks.map((t) => t.id).join(', ')}; seeds ${o.seeds.join(', ')}) on the tfjs '${backend}' backend${where}`);
  for (const t of tasks) o.log(`  ${t.id}: ${t.description}\n    data: ${t.dataSource}`);
  const progress = createProgress(plan.reduce((a, p) => a + p.steps, 0), o.log, o.progress !== false);
  const label = (job: RunJob) => `${job.taskId} ${specLabel(job.spec)} seed ${job.seed}`;
  const done = (job: RunJob, r: RunResult) => {
    const acc = r.final.accuracy !== undefined ? `, accuracy ${r.final.accuracy.toFixed(2)}%` : '';
    progress.endRun(`  done: ${label(job)}: loss ${r.final.loss.toFixed(4)}${acc}, state ${bytes(r.stateBytes)}, ${r.msPerStep.toFixed(1)} ms/step${r.diverged ? ' (DIVERGED)' : ''}`);
  };
  let runs: RunResult[] = [];
  try {
    if (jobs > 1) {
      runs = await runInWorkers(plan.map(({ task: _task, ...job }) => job), { tfBackend: backend, via, ...(o.lmSize ? { lmSize: o.lmSize } : {}) }, jobs, {
        onStart: () => {},
        onStep: (job, step, loss) => progress.step(step, loss, label(job)),
        onDone: done,
      });
    } else {
      for (const job of plan) {
        progress.startRun(label(job), job.steps);
        const r = await trainRun(job.task, job.spec, factory, { steps: job.steps, seed: job.seed, onStep: (s, l) => progress.step(s, l) });
        runs.push(r);
        done(job, r);
      }
    }
  } finally {
    progress.stop();
  }
  return {
    format: 'bitopt-demo-results',
    env: describeEnvironment(backend, o.command),
    seeds: o.seeds,
    tasks: tasks.map((t) => ({ id: t.id, title: t.title, description: t.description, dataSource: t.dataSource, lossLabel: t.lossLabel, steps: o.steps ?? t.defaultSteps })),
    runs,
    ...(adapterName ? { adapter: adapterName } : {}),
  };
}

/** The end-of-run tables for the terminal. */
export function demoTables(demo: DemoResults): string {
  const summaries = summarize(demo.runs);
  const fmtStat = (s: { mean: number; std: number; values: number[] }, d: number) => (s.values.length > 1 ? `${s.mean.toFixed(d)} ± ${s.std.toFixed(d)}` : s.mean.toFixed(d));
  const out: string[] = [];
  for (const task of demo.tasks) {
    const ts = summaries.filter((s) => s.task === task.id);
    out.push(`\n${task.title} — ${task.steps} steps, seed${demo.seeds.length > 1 ? 's' : ''} ${demo.seeds.join(',')}; loss = ${task.lossLabel}`);
    out.push(
      textTable(
        ['optimizer', 'final loss', 'accuracy %', 'opt. state', 'peak tensors', 'outside tfjs', 'ms/step'],
        ts.map((s) => [
          specLabel(s.spec) + (s.diverged ? ` (${s.diverged} diverged)` : ''),
          fmtStat(s.loss, 4),
          s.accuracy ? fmtStat(s.accuracy, 2) : '-',
          bytes(s.stateBytes),
          bytes(s.peakTensorBytes),
          bytes(s.offTensorBytes),
          s.msPerStep.toFixed(1),
        ]),
      ),
    );
  }
  const twins = compareTwins(summaries);
  if (twins.length) out.push(`\n${twinHeading()}`, textTable(TWIN_HEADER, twins.map((t) => twinRow(t, (ok, text) => `${ok ? '✓' : '✗'} ${text}`))), '', ...twins.map((t) => `  ${twinLabel(t)}: ${remainderText(t)}`));
  return out.join('\n');
}

const TWIN_HEADER = ['task / optimizer', 'Δ loss', 'Δ accuracy', 'quantized tensors', 'whole model', 'verdict'];

function twinHeading(): string {
  return (
    `Low-bit vs 32-bit twin (means over seeds). Targets: |Δ loss| ≤ ${100 * TARGETS.lossRelative}%, |Δ accuracy| ≤ ${TARGETS.accuracyPoints} pt, ` +
    `state of the quantized tensors ≤ ${(100 * TARGETS.stateRatio[8]).toFixed(0)}% of 32-bit (8-bit) / ${(100 * TARGETS.stateRatio[4]).toFixed(0)}% (4-bit); ` +
    'the rest of the model keeps 32-bit state by design (StableEmbedding, tensors under 4096 elements)'
  );
}

const twinLabel = (t: TwinComparison) => `${t.task} / ${FAMILIES[t.family as Family].label} ${t.bits}-bit`;

/** One comparison as table cells; `mark` renders a check (✓/✗ in text, bold in Markdown). */
function twinRow(t: TwinComparison, mark: (ok: boolean, text: string) => string): string[] {
  const c = Object.fromEntries(checks(t).map((k) => [k.name, k]));
  return [
    twinLabel(t),
    mark(c.loss.ok, pct(t.lossRelative)),
    c.accuracy ? mark(c.accuracy.ok, `${t.accuracyPoints! >= 0 ? '+' : ''}${t.accuracyPoints!.toFixed(2)} pt`) : '-',
    t.quantized ? mark(c.state.ok, `${(100 * t.quantized.stateRatio).toFixed(1)}%`) : '-',
    `${bytes(t.bits8.stateBytes)} / ${bytes(t.bits32.stateBytes)} = ${(100 * t.stateRatio).toFixed(1)}%` + (t.quantized ? '' : ` ${mark(c.state.ok, '')}`.trimEnd()),
    verdictText(t),
  ];
}

/** Reads whatever results exist in `dir` and writes `dir`/index.html. */
export function writeReport(dir: string, update: { demo?: DemoResults; ablation?: AblationResults }): string {
  mkdirSync(dir, { recursive: true });
  const read = <T>(name: string): T | undefined => {
    const p = join(dir, name);
    return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as T) : undefined;
  };
  if (update.demo) writeFileSync(join(dir, 'demo-results.json'), JSON.stringify(update.demo));
  if (update.ablation) writeFileSync(join(dir, 'ablation-results.json'), JSON.stringify(update.ablation));
  const data: ReportData = {
    demo: update.demo ?? read<DemoResults>('demo-results.json'),
    ablation: update.ablation ?? read<AblationResults>('ablation-results.json'),
    capacity: read<NonNullable<ReportData['capacity']>>('capacity-results.json'),
    budget: budgetReport(),
  };
  const path = join(dir, 'index.html');
  writeFileSync(path, renderReport(data));
  return path;
}

/** The results as Markdown (written to summary.md next to the report; pasted into docs/demo.md). */
export function demoMarkdown(demo: DemoResults): string {
  const summaries = summarize(demo.runs);
  const several = demo.seeds.length > 1;
  // One seed prints one value; a spread only where there are several seeds.
  const value = (s: { mean: number; std: number }, d: number) => (several ? `${s.mean.toFixed(d)} ± ${s.std.toFixed(d)}` : s.mean.toFixed(d));
  const perSeed = (s: { values: number[] }, d: number) => (several ? [s.values.map((v) => v.toFixed(d)).join(' / ')] : []);
  const out: string[] = [`Command: \`${demo.env.command}\` — ${demo.env.createdAt}, ${demo.env.machine}, Node ${demo.env.node}, tfjs backend ${demo.env.tfBackend}.`];
  for (const task of demo.tasks) {
    const ts = summaries.filter((s) => s.task === task.id);
    out.push(`\n**${task.title}** — ${task.steps} steps, seed${several ? 's' : ''} ${demo.seeds.join(', ')}; loss = ${task.lossLabel}.\n`);
    out.push(
      markdownTable(
        [
          'optimizer',
          several ? 'final loss (mean ± std)' : 'final loss',
          ...(several ? ['per seed'] : []),
          several ? 'accuracy % (mean ± std)' : 'accuracy %',
          ...(several ? ['per seed'] : []),
          'optimizer state',
          'peak tfjs tensors',
          'ms/step',
        ],
        ts.map((s) => [
          specLabel(s.spec),
          value(s.loss, 4),
          ...perSeed(s.loss, 4),
          s.accuracy ? value(s.accuracy, 2) : '–',
          ...(several ? [s.accuracy ? perSeed(s.accuracy, 2)[0] : '–'] : []),
          bytes(s.stateBytes),
          bytes(s.peakTensorBytes),
          s.msPerStep.toFixed(1),
        ]),
      ),
    );
  }
  const twins = compareTwins(summaries);
  out.push(`\n**${twinHeading()}**:\n`);
  out.push(markdownTable(TWIN_HEADER, twins.map((t) => twinRow(t, (ok, text) => `${text} ${ok ? '✓' : '✗'}`))));
  out.push('', ...twins.map((t) => `- ${twinLabel(t)}: ${remainderText(t)}.`));
  return out.join('\n');
}
