/**
 * Issue 14's quality table: each rule at 32, 8 and 4 bits on the demo's tasks, with the demo's
 * own training loop (tasks.ts, train.ts: same weights and batches per seed, cosine schedule),
 * over seeds. Results are appended run by run to the JSON file, so a stopped run keeps its rows.
 *   nice -n 10 node --import tsx packages/demo/bench/quality4.ts --tasks mnist,lm --families adam
 *        --bits 32,8,4 --seeds 1,2,3 [--steps N] [--lr-scale 1] [--backend wasm] --out results.json
 *   node --import tsx packages/demo/bench/quality4.ts --summarize results.json
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import * as bitopt from 'bitopt';
import { initTf, type TfBackend } from '../src/demo/backend.js';
import { coreClassOptimizer, FAMILIES, type Family, type OptimizerFactory } from '../src/demo/optimizers.js';
import { stat } from '../src/demo/summary.js';
import { createTask, type TaskId } from '../src/demo/tasks.js';
import { trainRun } from '../src/demo/train.js';
import { cpuCopyBandwidthGBs } from '../src/demo/copy-bandwidth.js';

const argv = process.argv.slice(2);
const arg = (name: string, fallback?: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : fallback;
};

export interface QualityRow {
  task: TaskId;
  family: Family;
  className: string;
  bits: number;
  seed: number;
  lrScale: number;
  steps: number;
  loss: number;
  accuracy?: number;
  stateBytes: number;
  msPerStep: number;
  diverged: boolean;
}

/** bitopt's class for a rule at `bits`: the 32-bit name plus '8bit' or '4bit' (Adam → Adam4bit). */
export function classFor(family: Family, bits: number): string {
  const base = FAMILIES[family].classes[32];
  return bits === 32 ? base : `${base}${bits}bit`;
}

/** As the demo's 'core' optimizers; the table measures every rule at 4 bits, those behind the parity gate too. */
function classFactory(name: string): OptimizerFactory {
  return (spec, model) => coreClassOptimizer(name, spec, model, name.endsWith('4bit') ? { allow4bitWithoutParity: true } : {});
}

/** Mean ± sample std per (task, family, bits, lrScale), and the relative gap to the 32-bit twin. */
export function summarize(rows: QualityRow[]): string {
  const keys = [...new Set(rows.map((r) => `${r.task}|${r.family}|${r.lrScale}|${r.bits}`))];
  const out = ['task | rule | lr× | bits | seeds | final loss mean ± std | Δ loss vs 32-bit (mean of per-seed Δ) | acc % mean ± std | Δ acc pt | per-seed loss'];
  for (const k of keys) {
    const [task, family, lrScale, bits] = k.split('|');
    const rs = rows.filter((r) => `${r.task}|${r.family}|${r.lrScale}|${r.bits}` === k).sort((a, b) => a.seed - b.seed);
    const base = rows.filter((r) => r.task === task && r.family === family && String(r.lrScale) === lrScale && r.bits === 32);
    const l = stat(rs.map((r) => r.loss));
    // Per-seed paired gaps: seeds share weights and batches, so pairing removes most seed noise.
    const paired = rs.flatMap((r) => {
      const b = base.find((x) => x.seed === r.seed);
      return b ? [{ dl: (r.loss - b.loss) / b.loss, da: r.accuracy !== undefined && b.accuracy !== undefined ? r.accuracy - b.accuracy : undefined }] : [];
    });
    const dl = paired.length ? stat(paired.map((p) => 100 * p.dl)) : undefined;
    const accs = rs.flatMap((r) => (r.accuracy !== undefined ? [r.accuracy] : []));
    const a = accs.length ? stat(accs) : undefined;
    const das = paired.flatMap((p) => (p.da !== undefined ? [p.da] : []));
    const da = das.length ? stat(das) : undefined;
    out.push(
      [
        task,
        family,
        lrScale,
        bits,
        rs.map((r) => r.seed).join(','),
        `${l.mean.toFixed(4)} ± ${l.std.toFixed(4)}`,
        bits === '32' || !dl ? '-' : `${dl.mean >= 0 ? '+' : ''}${dl.mean.toFixed(2)}% ± ${dl.std.toFixed(2)} [${dl.min.toFixed(2)}, ${dl.max.toFixed(2)}]`,
        a ? `${a.mean.toFixed(2)} ± ${a.std.toFixed(2)}` : '-',
        bits === '32' || !da ? '-' : `${da.mean >= 0 ? '+' : ''}${da.mean.toFixed(2)} ± ${da.std.toFixed(2)}`,
        rs.map((r) => (r.diverged ? 'div' : r.loss.toFixed(4))).join(' '),
      ].join(' | '),
    );
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const summarizeFile = arg('summarize');
  if (summarizeFile) {
    console.log(summarize(JSON.parse(readFileSync(summarizeFile, 'utf8')).rows));
    return;
  }
  const out = arg('out');
  if (!out) throw new Error('quality4: --out FILE is required');
  const tasks = arg('tasks', 'mnist')!.split(',') as TaskId[];
  const families = arg('families', 'adam')!.split(',') as Family[];
  for (const f of families) if (!(f in FAMILIES)) throw new Error(`quality4: unknown family '${f}' (known: ${Object.keys(FAMILIES).join(', ')})`);
  const bitsList = arg('bits', '32,8,4')!.split(',').map(Number);
  const seeds = arg('seeds', '1,2,3')!.split(',').map(Number);
  const lrScale = Number(arg('lr-scale', '1'));
  const stepsArg = arg('steps');
  const backend = await initTf(arg('backend', 'wasm') as TfBackend, console.log);
  const bw = cpuCopyBandwidthGBs(64 << 20);
  const env = {
    createdAt: new Date().toISOString(),
    command: `node --import tsx packages/demo/bench/quality4.ts ${argv.join(' ')}`,
    machine: `${os.cpus()[0]?.model?.trim() ?? 'unknown'} × ${os.availableParallelism()}`,
    copyBandwidthGBs: Number(bw.toFixed(2)),
    node: process.version,
    tfBackend: backend,
  };
  console.log(`# ${env.machine}, Node ${env.node}, tfjs ${backend}; copy bandwidth (Float32Array.set, 256 MiB, read+write, median of 7) ${env.copyBandwidthGBs} GB/s`);
  const doc: { env: typeof env; rows: QualityRow[] } = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : { env, rows: [] };
  for (const taskId of tasks) {
    const task = createTask(taskId);
    const steps = stepsArg ? Number(stepsArg) : task.defaultSteps;
    for (const seed of seeds) {
      for (const family of families) {
        for (const bits of bitsList) {
          const name = classFor(family, bits);
          const lr = task.lr[family] * lrScale;
          const r = await trainRun(task, { id: name, family, kind: 'core', bits: bits as 32 | 8 | 4, lr }, classFactory(name), { steps, seed });
          const row: QualityRow = {
            task: taskId,
            family,
            className: name,
            bits,
            seed,
            lrScale,
            steps,
            loss: r.final.loss,
            ...(r.final.accuracy !== undefined ? { accuracy: r.final.accuracy } : {}),
            stateBytes: r.stateBytes,
            msPerStep: Number(r.msPerStep.toFixed(1)),
            diverged: !!r.diverged,
          };
          doc.rows.push(row);
          writeFileSync(out, JSON.stringify(doc, null, 1));
          console.log(`${taskId} ${name} lr×${lrScale} seed ${seed}: loss ${row.loss.toFixed(4)}${row.accuracy !== undefined ? ` acc ${row.accuracy.toFixed(2)}` : ''} ${row.msPerStep} ms/step`);
        }
      }
    }
  }
  console.log(summarize(doc.rows));
}

if (process.argv[1]?.endsWith('quality4.ts')) await main();
