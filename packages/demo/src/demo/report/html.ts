/** Renders the HTML report (bitopt-report/index.html) from the demo and ablation results. */
import { BLOCK_SIZE } from '../budget.js';
import { bytes, count, pct } from '../format.js';
import { FAMILIES, specLabel, type Family } from '../optimizers.js';
import type { AblationResults, DemoResults, ReportData } from '../results.js';
import { compareTwins, stat, summarize, TARGETS, type TwinComparison, type VariantSummary } from '../summary.js';
import type { RunResult } from '../train.js';
import { escapeHtml as esc, lineChart, smooth, type Series } from './svg.js';

const COLORS = { tfjs: '#888888', bits32: '#1f77b4', bits8: '#d62728' };

const CSS = `
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1180px;margin:24px auto;padding:0 16px;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:4px} h2{margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px} h3{margin-top:22px}
table{border-collapse:collapse;margin:10px 0;font-size:13px} th,td{border:1px solid #ddd;padding:4px 8px;text-align:right} th:first-child,td:first-child{text-align:left}
th{background:#f5f5f5} .ok{color:#116611;font-weight:600} .bad{color:#aa1111;font-weight:600} .muted{color:#666;font-size:13px}
.charts{display:flex;flex-wrap:wrap;gap:12px} .chart{background:#fff;border:1px solid #eee}
.verdict{display:inline-block;margin:4px 8px 4px 0;padding:6px 10px;border-radius:6px;background:#f3f7f3;border:1px solid #cfe3cf;font-size:14px}
.verdict.bad{background:#fbf1f1;border-color:#e8c8c8} code{background:#f4f4f4;padding:1px 4px;border-radius:3px}
`;

function table(header: string[], rows: string[][], cls = ''): string {
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${header.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

const mark = (ok: boolean, text: string) => `<span class="${ok ? 'ok' : 'bad'}">${text}</span>`;

export function lossCell(s: VariantSummary): string {
  const l = s.loss;
  return l.values.length > 1 ? `${l.mean.toFixed(4)} ± ${l.std.toFixed(4)}` : l.mean.toFixed(4);
}

function accCell(s: VariantSummary): string {
  if (!s.accuracy) return '–';
  const a = s.accuracy;
  return a.values.length > 1 ? `${a.mean.toFixed(2)} ± ${a.std.toFixed(2)}` : a.mean.toFixed(2);
}

/** Mean over seeds of each step's value. */
function meanCurve(curves: number[][]): number[] {
  const n = Math.min(...curves.map((c) => c.length));
  return Array.from({ length: n }, (_, i) => curves.reduce((a, c) => a + c[i], 0) / curves.length);
}

function familyCharts(demo: DemoResults, taskId: string, family: Family): string {
  const runs = demo.runs.filter((r) => r.task === taskId && r.spec.family === family);
  const groups: { label: string; color: string; dashed: boolean; runs: RunResult[] }[] = [];
  for (const kind of ['tfjs', 'bits32', 'bits8'] as const) {
    const rs = runs.filter((r) => (kind === 'tfjs' ? r.spec.kind === 'tfjs' : r.spec.kind !== 'tfjs' && r.spec.bits === (kind === 'bits8' ? 8 : 32)));
    if (rs.length) groups.push({ label: specLabel(rs[0].spec), color: COLORS[kind], dashed: kind === 'tfjs', runs: rs });
  }
  const train: Series[] = groups.map((g) => ({
    label: g.label,
    color: g.color,
    dashed: g.dashed,
    points: smooth(meanCurve(g.runs.map((r) => r.trainLoss))).map((y, i) => [i + 1, y] as [number, number]),
  }));
  const evalSeries: Series[] = groups.map((g) => {
    const steps = g.runs[0].evals.map((e) => e.step);
    return {
      label: g.label,
      color: g.color,
      dashed: g.dashed,
      markers: true,
      points: steps.map((s, i) => [s, stat(g.runs.map((r) => r.evals[i]?.loss ?? NaN)).mean] as [number, number]).filter(([s]) => s > 0),
    };
  });
  const seeds = groups[0]?.runs.length ?? 0;
  // Gap per seed: 8-bit minus 32-bit held-out loss at each evaluation (same seed = same data).
  const r32 = runs.filter((r) => r.spec.kind !== 'tfjs' && r.spec.bits === 32);
  const r8 = runs.filter((r) => r.spec.bits === 8);
  const seedPalette = ['#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf'];
  const gap: Series[] = r8.flatMap((a, i) => {
    const b = r32.find((r) => r.seed === a.seed);
    if (!b) return [];
    const points = a.evals.filter((e) => e.step > 0).map((e, k) => [e.step, e.loss - (b.evals[k + 1]?.loss ?? NaN)] as [number, number]);
    return [{ label: `seed ${a.seed}`, color: seedPalette[i % seedPalette.length], markers: true, points }];
  });
  if (gap.length) gap.push({ label: 'no difference', color: '#999999', dashed: true, width: 1, points: gap[0].points.map(([x]) => [x, 0] as [number, number]) });
  const label = FAMILIES[family].label;
  const taskInfo = demo.tasks.find((t) => t.id === taskId)!;
  return `<h3>${esc(label)}: 8-bit vs 32-bit</h3><div class="charts">${lineChart(train, {
    title: `${label}: training loss (EMA, mean of ${seeds} seed${seeds > 1 ? 's' : ''})`,
    xLabel: 'step',
    yLabel: 'batch loss',
  })}${lineChart(evalSeries, { title: `${label}: ${taskInfo.lossLabel}`, xLabel: 'step', yLabel: 'loss' })}${
    gap.length ? lineChart(gap, { title: `${label}: held-out loss, 8-bit minus 32-bit`, xLabel: 'step', yLabel: 'Δ loss' }) : ''
  }</div>`;
}

function comparisonRows(c: TwinComparison[]): string[][] {
  return c.map((t) => [
    `${esc(t.task)} / ${esc(FAMILIES[t.family as Family]?.label ?? t.family)}`,
    lossCell(t.bits32),
    lossCell(t.bits8),
    mark(t.lossOk, pct(t.lossRelative)),
    t.accuracyPoints === undefined ? '–' : `${accCell(t.bits32)} → ${accCell(t.bits8)} ` + mark(t.accuracyOk, `(${t.accuracyPoints >= 0 ? '+' : ''}${t.accuracyPoints.toFixed(2)} pt)`),
    `${bytes(t.bits32.stateBytes)} → ${bytes(t.bits8.stateBytes)} ` + mark(t.stateOk, `(${(100 * t.stateRatio).toFixed(1)}%)`),
    t.quantized
      ? `${(100 * t.quantized.stateRatio).toFixed(1)}%` + (t.quantized.float32Params ? ` <span class="muted">(${t.quantized.float32Params.toLocaleString('en-US')} params kept 32-bit)</span>` : '')
      : '–',
  ]);
}

function demoSection(demo: DemoResults): string {
  const summaries = summarize(demo.runs);
  const twins = compareTwins(summaries);
  const parts: string[] = [];
  parts.push(`<h2>8-bit vs 32-bit: the verdict</h2>`);
  parts.push(
    `<p class="muted">Targets (the paper's claim): final loss within ${100 * TARGETS.lossRelative}% (relative), accuracy within ${TARGETS.accuracyPoints} points, ` +
      `8-bit Adam state at most ${100 * TARGETS.stateRatio}% of 32-bit. Means over seeds ${demo.seeds.join(', ')}; ± is the standard deviation over seeds.</p>`,
  );
  parts.push(table(['task / optimizer', 'loss 32-bit', 'loss 8-bit', 'Δ loss', 'accuracy % (Δ)', 'optimizer state', 'state of quantized tensors'], comparisonRows(twins)));
  parts.push(
    `<p class="muted">The last column leaves out the tensors whose state stays 32-bit by design: StableEmbedding's weights (the paper keeps them 32-bit for stability) ` +
      `and tensors under 4096 elements (biases, layer norms; min8bitSize, as in the reference library). On a small model they weigh more, so the whole-model ratio can exceed the 25.4% of the quantized tensors.</p>`,
  );
  for (const task of demo.tasks) {
    const ts = summaries.filter((s) => s.task === task.id);
    if (!ts.length) continue;
    parts.push(`<h2>${esc(task.title)}</h2><p>${esc(task.description)}<br><span class="muted">Data: ${esc(task.dataSource)}. ${task.steps} steps, ${ts[0].params.toLocaleString('en-US')} parameters.</span></p>`);
    const ref = new Map(ts.filter((s) => s.spec.bits === 32 && s.spec.kind !== 'tfjs').map((s) => [s.spec.family, s.stateBytes]));
    parts.push(
      table(
        ['optimizer', `final ${esc(task.lossLabel)}`, 'range over seeds', 'accuracy %', 'optimizer state', 'vs 32-bit', 'peak tfjs tensors', 'held outside tfjs', 'ms / step'],
        ts.map((s) => [
          esc(specLabel(s.spec)) + (s.diverged ? ` <span class="bad">(${s.diverged} diverged)</span>` : ''),
          lossCell(s),
          `${s.loss.min.toFixed(4)} – ${s.loss.max.toFixed(4)}`,
          accCell(s),
          bytes(s.stateBytes),
          ref.has(s.spec.family) ? `${((100 * s.stateBytes) / ref.get(s.spec.family)!).toFixed(1)}%` : '–',
          bytes(s.peakTensorBytes),
          bytes(s.offTensorBytes),
          s.msPerStep.toFixed(1),
        ]),
      ),
    );
    const families = [...new Set(ts.map((s) => s.spec.family))];
    for (const f of families) parts.push(familyCharts(demo, task.id, f));
  }
  return parts.join('\n');
}

function ablationSection(a: AblationResults): string {
  const parts: string[] = [`<h2>Ablation: which parts of the 8-bit recipe matter</h2>`];
  parts.push(
    `<p>Optimizer states (Adam's m and v) captured from a 32-bit Adam run on <b>${esc(a.task.title)}</b>, then quantized and dequantized ` +
      `with each variant. Tensor-wise uses one absmax for the whole tensor; block-wise one per block. Dynamic = the dynamic tree map; linear = 256 evenly spaced values.</p>`,
  );
  const variants = [...new Set(a.quantError.map((r) => r.variant))];
  for (const state of ['m (signed)', 'v (unsigned)'] as const) {
    const rows = variants.map((v) => {
      const rs = a.quantError.filter((r) => r.variant === v && r.state === state);
      const w = rs.reduce((s, r) => s + r.elements, 0);
      const avg = (k: 'relL2' | 'meanRel' | 'zeroed') => rs.reduce((s, r) => s + r[k] * r.elements, 0) / w;
      return [esc(v), avg('relL2').toExponential(2), avg('meanRel').toExponential(2), `${(100 * avg('zeroed')).toFixed(2)}%`];
    });
    parts.push(`<h3>State ${state}</h3>` + table(['variant', 'relative L2 error', 'mean relative error', 'non-zeros quantized to 0'], rows));
  }
  parts.push(`<h3>Training stability: final loss over seeds ${a.seeds.join(', ')}</h3>`);
  parts.push(
    table(
      ['variant', 'mean final loss', 'std', 'min – max', 'diverged'],
      a.stability.map((s) => {
        const ok = s.finalLoss.filter(Number.isFinite);
        const st = ok.length ? stat(ok) : undefined;
        return [
          `${esc(s.variant)}<br><span class="muted">${esc(s.description)}</span>`,
          st ? st.mean.toFixed(4) : '–',
          st ? st.std.toFixed(4) : '–',
          st ? `${st.min.toFixed(4)} – ${st.max.toFixed(4)}` : '–',
          String(s.diverged),
        ];
      }),
    ),
  );
  const palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
  parts.push(
    `<div class="charts">${lineChart(
      a.stability.map((s, i) => ({ label: s.variant, color: palette[i % palette.length], points: smooth(s.curve).map((y, k) => [k + 1, y] as [number, number]) })),
      { title: 'Ablation: training loss (EMA, mean over seeds)', xLabel: 'step', yLabel: 'batch loss', width: 760 },
    )}</div>`,
  );
  return parts.join('\n');
}

function budgetSection(d: ReportData['budget']): string {
  const t = d.transformer;
  const row = (name: string, f: typeof t.bits32) => [
    name,
    `d_model ${f.config.dModel}, ${f.config.layers} layers, ${f.config.heads} heads`,
    count(f.params),
    bytes(f.bytes.weights),
    bytes(f.bytes.grads),
    bytes(f.bytes.state),
    bytes(f.bytes.total),
  ];
  return `<h2>A bigger model in the same memory</h2>
<p><b>Budget: ${bytes(d.budgetBytes)}.</b> ${esc(d.reason)}</p>
<p>Training memory per parameter = weights 4 B + gradients 4 B + optimizer state: 32-bit Adam 8 B (${d.bytesPerParam.bits32} B in all),
8-bit Adam 2 B of codes + ${(8 / BLOCK_SIZE).toFixed(3)} B of block absmax (${d.bytesPerParam.bits8.toFixed(3)} B in all). Activations are left out: they depend on batch and sequence length, not on the optimizer.
Upper bound for any model: <b>${count(d.maxParams.bits32)}</b> parameters with 32-bit Adam vs <b>${count(d.maxParams.bits8)}</b> with 8-bit Adam (${(d.maxParams.bits8 / d.maxParams.bits32).toFixed(2)}×).</p>
<p>The demo's own transformer family (character vocabulary, context 64, width = 64 × depth, GPT-2's aspect ratio), counted tensor by tensor with the optimizer's rules (StableEmbedding and tensors under 4096 elements keep 32-bit state):</p>
${table(['optimizer', 'largest model that fits', 'parameters', 'weights', 'gradients', 'optimizer state', 'total'], [row('32-bit Adam', t.bits32), row('8-bit Adam', t.bits8)])}
<p>With 8-bit Adam the same ${bytes(d.budgetBytes)} trains a model with <b>${(t.bits8.params / t.bits32.params).toFixed(2)}×</b> the parameters.</p>`;
}

export function renderReport(data: ReportData): string {
  const env = data.demo?.env ?? data.ablation?.env;
  const verdicts = data.demo
    ? compareTwins(summarize(data.demo.runs)).map((t) => {
        const ok = t.lossOk && t.accuracyOk && t.stateOk;
        return `<span class="verdict${ok ? '' : ' bad'}">${esc(t.task)} · ${esc(FAMILIES[t.family as Family]?.label ?? t.family)}: loss ${pct(t.lossRelative)}${
          t.accuracyPoints !== undefined ? `, accuracy ${t.accuracyPoints >= 0 ? '+' : ''}${t.accuracyPoints.toFixed(2)} pt` : ''
        }, state ${(100 * t.stateRatio).toFixed(1)}%</span>`;
      })
    : [];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bitopt report: 8-bit vs 32-bit optimizers</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${CSS}</style></head>
<body>
<h1>bitopt: 8-bit optimizers, trained side by side</h1>
<p class="muted">${env ? `${esc(env.createdAt)} · <code>${esc(env.command)}</code> · ${esc(env.machine)} · Node ${esc(env.node)} · tfjs backend ${esc(env.tfBackend)}` : ''}</p>
<p>Block-wise 8-bit optimizer states (Dettmers et al., <i>8-bit Optimizers via Block-wise Quantization</i>, ICLR 2022) against their 32-bit twins
and TensorFlow.js's own float32 Adam, on real data. Same seed = same initial weights and same batches for every optimizer.</p>
<div>${verdicts.join('')}</div>
${data.demo ? demoSection(data.demo) : '<p class="muted">No demo results yet: run <code>npx bitopt demo</code>.</p>'}
${data.ablation ? ablationSection(data.ablation) : '<p class="muted">No ablation results yet: run <code>npx bitopt ablation</code>.</p>'}
${budgetSection(data.budget)}
<h2>How it was measured</h2>
<ul>
<li><b>Final loss</b>: loss on held-out data (MNIST test digits, Brown Corpus validation samples) after the last step; accuracy on the MNIST test digits.</li>
<li><b>Optimizer state</b>: bytes of state the optimizer holds (bitopt: <code>stateBytes()</code>: codes + absmax + float32 states; tfjs Adam: its two float32 accumulators).</li>
<li><b>Peak tfjs tensors</b>: <code>tf.profile</code>'s peak bytes of live tensors during one training step (weights, gradients, activations; tfjs Adam's state is in here too).
<b>Held outside tfjs</b>: bitopt keeps its optimizer state and a float32 copy of the weights in JavaScript typed arrays, not tfjs tensors.</li>
<li><b>ms / step</b>: wall time of forward, backward and update, averaged over the run (excludes evaluation).</li>
</ul>
</body></html>
`;
}
