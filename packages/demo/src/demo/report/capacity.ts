/** The report's capacity section: `bitopt demo --task capacity` (src/demo/capacity). */
import { baselineParams, capacityHeader, capacityRows, stepMs, wallLabel, type CapacityResults } from '../capacity/run-capacity.js';
import type { SearchResult } from '../capacity/search.js';
import { bytes, count } from '../format.js';
import { barChart, escapeHtml as esc, lineChart, type Bar, type Series } from './svg.js';

const COLORS: Record<string, string> = { 'tf.train.adam': '#7f7f7f', 'bitopt.adam8bit': '#d62728', 'bitopt.adam4bit': '#e67e00' };
const wallName = (s: SearchResult) => wallLabel(s.wall);
const name = (s: SearchResult) => `${s.optimizer} [${wallName(s)}]`;

function table(header: string[], rows: string[][]): string {
  return `<table><thead><tr>${header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

/** Peak tfjs tensor bytes (webgpu: tfjs's buffers in use) per parameter at the largest size: where each optimizer's wall comes from. */
const perParam = (s: SearchResult) => (s.largest?.memory ? s.largest.memory.tfjs.peakLiveBytes / s.largest.params : NaN);

/** The paragraph on the wall of a webgpu run: how it is counted, and the pool. */
function gpuWallText(c: CapacityResults): string {
  const largest = c.searches.flatMap((s) => (s.largest?.memory?.gpu ? [s.largest.memory.gpu] : []));
  const flushes = c.searches.flatMap((s) => s.trials).reduce((a, t) => a + (t.memory?.gpu?.poolFlushes ?? 0), 0);
  return `<p><b>The wall (webgpu):</b> tfjs's <code>webgpu</code> backend on <b>${esc(c.env.gpu ?? 'a WebGPU adapter')}</b>, with a budget of <b>${bytes(c.budgetBytes)}</b> on the GPU buffers alive on the device. The run wraps the GPUDevice's <code>createBuffer</code> and each buffer's <code>destroy</code>, so it counts tfjs's buffers and bitopt's alike (bitopt's adapter allocates on tfjs's device); a buffer that would pass the budget throws an out-of-memory error. tfjs keeps the buffers of freed tensors in a pool for reuse instead of destroying them: before refusing a buffer the run submits tfjs's recorded work (which frees the tensors disposed meanwhile; not during bitopt's step, which records into tfjs's encoder) and destroys the pool, then tries once more (${flushes} such flushes over all trials). The memory columns are taken at the moment the bytes in use (live buffers less tfjs's pool) were highest${largest.length ? `; the pool is counted apart (${largest.map((g) => bytes(g.peak.tfjsPool)).join(', ')} at those moments)` : ''}. WebGPU reports no device memory size, so the budget is the user's (<code>--budget-mib</code>); a storage buffer over the device's largest binding (${bytes(largest[0]?.maxBindingBytes ?? NaN)}) fails too.</p>`;
}

export function capacitySection(c: CapacityResults): string {
  const base = baselineParams(c);
  const onGpu = c.backend === 'webgpu';
  const wall = c.artificialBudget
    ? `an artificial budget of <b>${bytes(c.budgetBytes)}</b> on tfjs's tensors (what <code>tf.memory()</code> counts; the heap itself, with XNNPACK's buffers and free space, is larger)`
    : `the tfjs wasm backend's heap, <b>${bytes(c.budgetBytes)}</b> (the wasm32 limit): a tensor that does not fit makes <code>_malloc</code> return 0, which the run turns into an out-of-memory error`;
  const ratios = c.searches
    .filter((s) => s.optimizer !== 'tf.train.adam' && s.largest && base)
    .map((s) => `<li>${esc(name(s))}: <b>${(s.largest!.params / base!).toFixed(2)}×</b> the parameters of tf.train.adam (${count(s.largest!.params)} vs ${count(base!)}).</li>`);
  const curves: Series[] = c.searches
    .filter((s) => s.largest)
    .map((s) => ({
      label: `${name(s)}, ${count(s.largest!.params)} params`,
      color: COLORS[s.optimizer] ?? '#1f77b4',
      ...(s.wall === 'combined' ? { dash: '6 3' } : {}),
      markers: true,
      points: s.largest!.losses.map((y, i) => [i + 1, y] as [number, number]),
    }));
  const bars: Bar[] = c.searches
    .filter((s) => s.largest?.memory)
    .map((s) => {
      const m = s.largest!.memory!;
      return {
        label: name(s),
        segments: [
          { label: onGpu ? "tfjs's buffers in use" : 'peak tfjs tensors', value: m.tfjs.peakLiveBytes, color: '#9fb8d1' },
          { label: onGpu ? "bitopt's GPU buffers" : "bitopt's kernel memory", value: m.bitoptKernelBytes, color: COLORS[s.optimizer] ?? '#1f77b4' },
        ],
        note: `${bytes(m.tfjs.peakLiveBytes + m.bitoptKernelBytes)} for ${count(s.largest!.params)} params`,
      };
    });
  const trials = c.searches.flatMap((s) =>
    s.trials.map((t) => [
      name(s),
      String(t.job.width),
      count(t.params),
      String(t.job.steps),
      t.outcome === 'ok' ? `trained, loss ${t.losses[0].toFixed(3)} → ${t.losses.at(-1)!.toFixed(3)}` : `${t.outcome} (${t.oomMemory ?? ''}) at ${t.failedAt}`,
      t.error ?? '',
    ]),
  );
  const adam = c.searches.find((s) => s.optimizer === 'tf.train.adam');
  const eight = c.searches.find((s) => s.optimizer === 'bitopt.adam8bit' && s.wall !== 'combined');
  return `<h2>A bigger model in the same memory, trained</h2>
<p><b>Backend:</b> ${onGpu ? `tfjs-webgpu (${esc(c.env.gpu ?? 'a WebGPU adapter')}), bitopt through its TensorFlow.js adapter on the GPU` : 'tfjs-wasm, bitopt through its TensorFlow.js adapter (its state in its own WebAssembly memory)'}; wall per search: ${[...new Set(c.searches.map((s) => wallLabel(s.wall)))].map(esc).join(', ')}.</p>
${onGpu ? gpuWallText(c) : `<p><b>The wall:</b> ${wall}.</p>`}
<p>Each optimizer's largest model is found by training it: parameter counts double until a trial runs out of memory, then bisect to within ${(100 * c.tolerance).toFixed(0)}%; each trial is a process of its own (${c.probeSteps} steps), and the largest size is then trained again for ${c.steps} steps (the curves below).
The model is a wide MLP (${c.family.inputs} inputs, ${c.family.hidden} hidden width × width layers, ${c.family.outputs} outputs, no biases, batch ${c.family.batch}) learning a fixed random teacher: nearly all its parameters are in the width × width matrices and its activations are tiny, so its memory is weights, gradients and optimizer state, the part an optimizer decides.</p>
${onGpu ? '' : `<p><b>Two walls.</b> bitopt keeps its state in its own WebAssembly memory (its kernel's, also at most 4 GiB), not in tfjs's heap. In the <i>tfjs heap</i> wall only tfjs's memory counts: bitopt's state is outside it, so this is what a tfjs-wasm user gains, but it is not a like-for-like count of the state. In the <i>tfjs + bitopt</i> wall tfjs's tensors and bitopt's kernel memory share the one budget.</p>`}
${table(capacityHeader(c), capacityRows(c))}
<ul>${ratios.join('')}</ul>
<p class="muted">Where the limits come from (peak ${onGpu ? "bytes of tfjs's buffers in use" : 'tfjs tensor bytes'} per parameter during a step): ${c.searches
    .filter((s) => s.largest)
    .map((s) => `${esc(name(s))} ${perParam(s).toFixed(1)} B`)
    .join(', ')}.
${adam?.largest && eight?.largest ? `tf.train.adam's m and v are 8 B/parameter, but its update builds new m, v and temporaries for every variable inside one <code>tidy</code>, so its peak is ${perParam(adam).toFixed(0)} B/parameter; bitopt's adapter steps the weights in place, so tfjs holds weights, gradients and the backward pass's temporaries (${perParam(eight).toFixed(1)} B). Much of the factor is therefore tf.train.adam's update, not only the state's size${onGpu ? "; on the GPU bitopt's state and buffers are inside the same budget" : ': the combined wall is the one where the state counts'}.` : ''}
ms/step is the median after the first step at the largest size; this machine: ${esc(c.env.machine)}, copy bandwidth ${c.copyGBs.toFixed(1)} GB/s. Command: <code>${esc(c.env.command)}</code>, ${esc(c.env.createdAt)}, ${(c.wallMs / 1000).toFixed(0)} s.</p>
<div class="charts">${curves.length ? lineChart(curves, { title: 'Training loss at the largest size that fits', xLabel: 'step', yLabel: 'batch loss (MSE)', width: 760 }) : ''}${
    bars.length ? barChart(bars, { title: onGpu ? "GPU memory at the largest size: tfjs's buffers in use + bitopt's buffers, at the peak" : 'Memory at the largest size: peak tfjs tensors + bitopt kernel memory', xLabel: 'bytes', format: bytes }) : ''
  }</div>
<details><summary>Every trial (${trials.length})</summary>${table(['search', 'width', 'parameters', 'steps', 'outcome', 'error'], trials)}</details>
<p class="muted">Median step time of each largest run: ${c.searches
    .filter((s) => s.largest)
    .map((s) => `${esc(name(s))} ${stepMs(s.largest!).toFixed(0)} ms`)
    .join(', ')}.</p>`;
}
