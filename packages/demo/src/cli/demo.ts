/**
 * `bitopt demo` and `bitopt ablation`: train real models with 8-bit and 32-bit optimizers
 * side by side and write an HTML report. The work lives in src/demo; this file parses flags.
 */
import type { Command } from 'commander';
import { ablationTables, runAblation } from '../demo/ablation.js';
import { budgetReport } from '../demo/budget.js';
import { MissingDataError } from '../demo/data/mnist.js';
import { bytes, count } from '../demo/format.js';
import { ALL_BITS, ALL_FAMILIES, type Bits, type Family } from '../demo/optimizers.js';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { demoMarkdown, demoTables, runDemo, writeReport } from '../demo/run-demo.js';
import { LM_SIZES, TASK_IDS, type LmSize, type TaskId } from '../demo/tasks.js';
import type { TfBackend } from '../demo/backend.js';

const log = (line: string) => process.stdout.write(`${line}\n`);

function parseTasks(v: string): TaskId[] {
  if (v === 'all') return [...TASK_IDS];
  const ids = v.split(',').map((s) => s.trim());
  for (const id of ids) if (!TASK_IDS.includes(id as TaskId)) throw new Error(`--task: unknown task '${id}' (expected ${TASK_IDS.join(', ')} or all)`);
  return ids as TaskId[];
}

/** `--tfjs-baseline <tasks>` (all, or a list of tasks) or `--no-tfjs-baseline` (false). */
function parseBaseline(v: unknown): boolean | TaskId[] {
  if (v === false) return false;
  if (v === 'all') return true;
  const ids = String(v).split(',').map((s) => s.trim());
  for (const id of ids) if (!TASK_IDS.includes(id as TaskId)) throw new Error(`--tfjs-baseline: unknown task '${id}' (expected ${TASK_IDS.join(', ')} or all)`);
  return ids as TaskId[];
}

function parseFamilies(v: string): Family[] {
  if (v === 'all') return [...ALL_FAMILIES];
  const ids = v.split(',').map((s) => s.trim().toLowerCase().replace(/8bit$/, ''));
  for (const id of ids) if (!ALL_FAMILIES.includes(id as Family)) throw new Error(`--optim: unknown optimizer '${id}' (expected ${ALL_FAMILIES.join(', ')} or all)`);
  return ids as Family[];
}

/** `--seeds 3` means seeds 1,2,3; `--seeds 4,7` means exactly those. */
export function parseSeeds(v: string): number[] {
  const seeds = v.includes(',') ? v.split(',').filter((x) => x.trim() !== '').map(Number) : Array.from({ length: Number(v) }, (_, i) => i + 1);
  if (seeds.length === 0 || seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new Error(`--seeds: expected a count or a comma-separated list of integers, got '${v}'`);
  return seeds;
}

/** `--bits 8,4`: the low-bit precisions to train beside the 32-bit twin; `all`: every one bitopt has. */
export function parseBits(v: string): Bits[] | undefined {
  if (v === 'all') return undefined;
  const bits = v.split(',').map((s) => Number(s.trim().replace(/-?bit$/, '')));
  for (const b of bits) if (!ALL_BITS.includes(b as Bits)) throw new Error(`--bits: expected a comma-separated list of ${ALL_BITS.join(', ')} or all, got '${v}'`);
  return bits as Bits[];
}

function parseLmSize(v: string): LmSize {
  if (!(v in LM_SIZES)) throw new Error(`--lm-size: expected ${Object.keys(LM_SIZES).join(' or ')}, got '${v}'`);
  return v as LmSize;
}

/** `--jobs N`: runs at once, each in its own process; `auto` is one per core. */
function parseJobs(v: string, tfBackend: TfBackend): number {
  // On a GPU the runs share one device: one at a time unless asked.
  if (v === 'auto') return tfBackend === 'webgpu' ? 1 : availableParallelism();
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--jobs: expected a positive integer or auto, got '${v}'`);
  return n;
}

function parseSteps(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--steps: expected a positive integer, got '${v}'`);
  return n;
}

/**
 * `--backend cpu`: the models on tfjs's wasm or cpu backend (`--tf-backend`). `--backend webgpu`:
 * the models on tfjs's webgpu backend (a GPU through Dawn), which `--tf-backend` cannot change.
 */
function checkBackend(device: string, tfBackend: string, tfBackendGiven = false): TfBackend {
  if (device === 'webgpu') {
    if (tfBackendGiven) throw new Error("--tf-backend: with --backend webgpu the models run on TensorFlow.js's webgpu backend; leave --tf-backend out");
    return 'webgpu';
  }
  if (device !== 'cpu') throw new Error(`--backend: expected cpu or webgpu, got '${device}'`);
  if (tfBackend !== 'wasm' && tfBackend !== 'cpu') throw new Error(`--tf-backend: expected wasm or cpu, got '${tfBackend}'`);
  return tfBackend;
}

/**
 * How bitopt's optimizers are driven. On the GPU only the TensorFlow.js adapter works: it steps
 * tfjs's own GPU buffers, while the core API updates Float32Arrays on the CPU.
 */
function checkVia(via: string, viaGiven: boolean, tfBackend: TfBackend): 'core' | 'tfjs' {
  if (via !== 'core' && via !== 'tfjs') throw new Error(`--via: expected core or tfjs, got '${via}'`);
  if (tfBackend !== 'webgpu') return via;
  if (viaGiven && via === 'core') {
    throw new Error("--via core: with --backend webgpu bitopt runs through its TensorFlow.js adapter (--via tfjs, the default there), which updates the weights on the GPU; the core API updates Float32Arrays on the CPU");
  }
  return 'tfjs';
}

async function guard(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    if (e instanceof MissingDataError || (e instanceof Error && /^--/.test(e.message))) {
      process.stderr.write(`bitopt: ${e.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw e;
  }
}

function budgetLines(): string {
  const b = budgetReport();
  const t = b.transformer;
  return [
    `\nA bigger model in the same memory — budget ${bytes(b.budgetBytes)} (the wasm32 memory limit of the tfjs wasm backend)`,
    `  bytes per parameter (weights + grads + state): 32-bit Adam ${b.bytesPerParam.bits32}, 8-bit Adam ${b.bytesPerParam.bits8.toFixed(3)}`,
    `  any model: up to ${count(b.maxParams.bits32)} parameters with 32-bit Adam vs ${count(b.maxParams.bits8)} with 8-bit Adam`,
    `  demo transformer family: 32-bit Adam fits d_model ${t.bits32.config.dModel} × ${t.bits32.config.layers} layers (${count(t.bits32.params)} params, ${bytes(t.bits32.bytes.total)}); ` +
      `8-bit Adam fits d_model ${t.bits8.config.dModel} × ${t.bits8.config.layers} layers (${count(t.bits8.params)} params, ${bytes(t.bits8.bytes.total)}): ${(t.bits8.params / t.bits32.params).toFixed(2)}× the parameters`,
  ].join('\n');
}

/**
 * `--task capacity`: the largest model each optimizer trains in the tfjs wasm heap, or with
 * `--backend webgpu` within a budget on the GPU's live buffers, found by allocating (src/demo/capacity).
 */
async function capacity(opts: Record<string, unknown>, given: (name: string) => boolean): Promise<void> {
  const onGpu = opts.backend === 'webgpu';
  if (given('backend') && !onGpu && opts.backend !== 'cpu') throw new Error(`--backend: expected cpu or webgpu, got '${String(opts.backend)}'`);
  if (onGpu && given('tfBackend')) throw new Error('--task capacity --backend webgpu: the models run on tfjs\'s webgpu backend; leave --tf-backend out');
  if (!onGpu && given('tfBackend') && opts.tfBackend !== 'wasm') throw new Error('--task capacity: the wall is the tfjs wasm heap; --tf-backend must be wasm');
  const mib = opts.budgetMib === undefined ? undefined : Number(opts.budgetMib);
  const maxMib = onGpu ? Infinity : 4096;
  if (mib !== undefined && !(Number.isFinite(mib) && mib > 0 && mib <= maxMib)) throw new Error(`--budget-mib: expected a number of MiB in (0, ${onGpu ? '∞' : 4096}], got '${String(opts.budgetMib)}'`);
  // WebGPU reports per-buffer limits but no device memory size: the wall is the user's budget.
  if (onGpu && mib === undefined) throw new Error("--task capacity --backend webgpu: needs --budget-mib N, the GPU memory the run may use (WebGPU does not report a device's memory size, only per-buffer limits; e.g. --budget-mib 24576 for a 24 GiB GPU)");
  const wall = given('wall') ? String(opts.wall) : onGpu ? 'gpu' : String(opts.wall);
  if (onGpu && wall !== 'gpu') throw new Error(`--wall: with --backend webgpu the wall is gpu (every GPU buffer, tfjs's and bitopt's, in one budget), got '${wall}'`);
  if (!onGpu && !['tfjs', 'combined', 'both'].includes(wall)) throw new Error(`--wall: expected tfjs, combined or both (gpu needs --backend webgpu), got '${wall}'`);
  const bits = parseBits(String(opts.bits)) ?? [8, 4];
  const { capacityCommand } = await import('../demo/capacity/command.js');
  await capacityCommand({
    optimizers: [...(opts.tfjsBaseline ? (['tf.train.adam'] as const) : []), ...(bits.includes(8) ? (['bitopt.adam8bit'] as const) : []), ...(bits.includes(4) ? (['bitopt.adam4bit'] as const) : [])],
    ...(onGpu ? { backend: 'webgpu' as const } : {}),
    walls: wall === 'both' ? ['tfjs', 'combined'] : [wall as 'tfjs' | 'combined' | 'gpu'],
    ...(mib !== undefined ? { budgetBytes: Math.round(mib * 1024 * 1024) } : {}),
    steps: opts.steps !== undefined ? parseSteps(String(opts.steps)) : 20,
    // One search at a time unless asked: each trial may take the heap's 4 GiB and bitopt's memory besides.
    jobs: given('jobs') ? parseJobs(String(opts.jobs), 'wasm') : 1,
    progress: Boolean(opts.progress),
    command: `bitopt ${process.argv.slice(2).join(' ')}`,
    log,
    out: String(opts.out),
  });
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('train real models (MNIST digits, a character-level transformer on the Brown Corpus) with 8-bit and 32-bit optimizers side by side; writes an HTML report')
    .option('--task <tasks>', `tasks to run: ${TASK_IDS.join(', ')} or all; or capacity (alone): the largest model each optimizer trains in tfjs wasm's 4 GiB heap (with --backend webgpu: in a GPU budget, --budget-mib), found by allocating`, 'all')
    .option('--optim <names>', `optimizer families (comma-separated): ${ALL_FAMILIES.join(', ')} or all`, 'adam')
    .option('--all', 'every optimizer: each 8-bit optimizer against its 32-bit twin (same as --optim all)')
    .option('--bits <list>', 'state precisions to train beside the 32-bit twin: 8, 4 (where the installed bitopt has the class), comma-separated, or all', 'all')
    .option('--steps <n>', 'training steps per run (default: per task, mnist 600, lm 400)')
    .option('--seeds <n|list>', 'number of seeds (1..n) or a comma-separated list', '1')
    .option('--out <dir>', 'report directory', 'bitopt-report')
    .option('--lm-size <size>', `size of the LM task's transformer: ${Object.keys(LM_SIZES).join(' or ')}`, 'small')
    .option('--backend <device>', "where the models and bitopt run: cpu, or webgpu (a GPU: TensorFlow.js's webgpu backend, bitopt's WGSL kernels through its TensorFlow.js adapter)", 'cpu')
    .option('--tf-backend <name>', 'TensorFlow.js backend for the models with --backend cpu: wasm (faster) or cpu', 'wasm')
    .option('--via <path>', "how bitopt optimizers are driven: core (bitopt's Float32Array API) or tfjs (bitopt's tf.Optimizer adapter, the drop-in for tf.train.*); --backend webgpu: tfjs only", 'core')
    .option('--jobs <n>', 'training runs at once, each in its own process (auto: one per core with --backend cpu, where tfjs wasm uses one core per run; 1 with --backend webgpu)', 'auto')
    .option('--tfjs-baseline <tasks>', `tasks on which to train TensorFlow.js's own float32 Adam beside bitopt's (Adam family): ${TASK_IDS.join(', ')} (comma-separated) or all`, 'mnist')
    .option('--no-tfjs-baseline', "skip TensorFlow.js's own float32 Adam everywhere")
    .option('--no-progress', 'no progress bar')
    .option('--budget-mib <n>', "--task capacity: an artificial budget (MiB) on tfjs's tensors instead of the wasm heap's real 4 GiB (for a quick run); with --backend webgpu (required) the budget on the GPU's live buffers, tfjs's and bitopt's")
    .option('--wall <wall>', "--task capacity: tfjs (tfjs's heap; bitopt's state in its own memory), combined (tfjs's tensors and bitopt's memory share the budget) or both; with --backend webgpu: gpu (the only one)", 'both')
    .action(async (opts, cmd: Command) =>
      guard(async () => {
        const given = (name: string) => cmd.getOptionValueSource(name) === 'cli';
        if (String(opts.task) === 'capacity') return capacity(opts, given);
        const tfBackend = checkBackend(opts.backend, opts.tfBackend, given('tfBackend'));
        const via = checkVia(String(opts.via), given('via'), tfBackend);
        const demo = await runDemo({
          tasks: parseTasks(opts.task),
          families: opts.all ? [...ALL_FAMILIES] : parseFamilies(opts.optim),
          ...(parseBits(String(opts.bits)) ? { bits: parseBits(String(opts.bits)) } : {}),
          seeds: parseSeeds(opts.seeds),
          ...(opts.steps !== undefined ? { steps: parseSteps(opts.steps) } : {}),
          out: opts.out,
          lmSize: parseLmSize(String(opts.lmSize)),
          tfBackend,
          tfjsBaseline: parseBaseline(opts.tfjsBaseline),
          progress: opts.progress,
          command: `bitopt ${process.argv.slice(2).join(' ')}`,
          log,
          via,
          jobs: parseJobs(String(opts.jobs), tfBackend),
        });
        log(demoTables(demo));
        log(budgetLines());
        const report = writeReport(opts.out, { demo });
        writeFileSync(join(opts.out, 'summary.md'), `${demoMarkdown(demo)}\n`);
        log(`\nReport: ${report}`);
      }),
    );
}

export function registerAblation(program: Command): void {
  program
    .command('ablation')
    .description('quantization error of dynamic vs linear maps and block-wise vs tensor-wise on real Adam states, and final-loss spread over seeds per variant')
    .option('--task <task>', `task: ${TASK_IDS.join(' or ')}`, 'mnist')
    .option('--steps <n>', 'training steps per run (default: 300)')
    .option('--seeds <n|list>', 'number of seeds (1..n) or a comma-separated list', '3')
    .option('--out <dir>', 'report directory', 'bitopt-report')
    .option('--tf-backend <name>', 'TensorFlow.js backend: wasm or cpu', 'wasm')
    .option('--no-progress', 'no progress bar')
    .action(async (opts) =>
      guard(async () => {
        const [task] = parseTasks(opts.task);
        const ablation = await runAblation({
          task,
          seeds: parseSeeds(opts.seeds),
          steps: opts.steps !== undefined ? parseSteps(opts.steps) : 300,
          tfBackend: checkBackend('cpu', opts.tfBackend),
          progress: opts.progress,
          command: `bitopt ${process.argv.slice(2).join(' ')}`,
          log,
        });
        log(ablationTables(ablation));
        log(`\nReport: ${writeReport(opts.out, { ablation })}`);
      }),
    );
}
