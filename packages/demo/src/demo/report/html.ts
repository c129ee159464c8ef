/** Renders the HTML report (bitopt-report/index.html) from the demo and ablation results. */
import { BLOCK_SIZE } from '../budget.js';
import { bytes, count, pct } from '../format.js';
import { FAMILIES, specLabel, type Family, type OptimizerSpec } from '../optimizers.js';
import type { AblationResults, DemoResults, ReportData } from '../results.js';
import { checks, compareTwins, remainderText, stat, summarize, TARGETS, verdictText, type TwinComparison, type VariantSummary } from '../summary.js';
import type { RunResult } from '../train.js';
import { capacitySection } from './capacity.js';
import { barChart, escapeHtml as esc, lineChart, smooth, type Bar, type MarkerShape, type Series } from './svg.js';

/**
 * How each precision is drawn: colour, dash pattern and marker all differ, and the widest line
 * (32-bit) is drawn first, so a low-bit curve lying exactly on its twin stays visible on top.
 */
export const STYLES = {
  bits32: { name: '32-bit', color: '#1f77b4', width: 3.2, marker: 'circle' },
  tfjs: { name: 'tfjs float32', color: '#7f7f7f', width: 2.2, dash: '9 3 2 3', marker: 'diamond' },
  bits8: { name: '8-bit', color: '#d62728', width: 1.8, dash: '7 4', marker: 'square' },
  bits4: { name: '4-bit', color: '#e67e00', width: 1.4, dash: '2 3', marker: 'triangle' },
} as const satisfies Record<string, { name: string; color: string; width: number; dash?: string; marker: MarkerShape }>;
type StyleKey = keyof typeof STYLES;
const DRAW_ORDER: StyleKey[] = ['bits32', 'tfjs', 'bits8', 'bits4'];

export function styleOf(spec: OptimizerSpec): StyleKey {
  return spec.kind === 'tfjs' ? 'tfjs' : spec.bits === 32 ? 'bits32' : spec.bits === 8 ? 'bits8' : 'bits4';
}

const CSS = `
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1180px;margin:24px auto;padding:0 16px;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:4px} h2{margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px} h3{margin-top:22px}
table{border-collapse:collapse;margin:10px 0;font-size:13px} th,td{border:1px solid #ddd;padding:4px 8px;text-align:right} th:first-child,td:first-child{text-align:left}
th{background:#f5f5f5} .ok{color:#116611;font-weight:600} .bad{color:#aa1111;font-weight:600} .muted{color:#666;font-size:13px}
.charts{display:flex;flex-wrap:wrap;gap:12px} .chart{background:#fff;border:1px solid #eee}
.verdict{display:inline-block;margin:4px 8px 4px 0;padding:6px 10px;border-radius:6px;background:#f3f7f3;border:1px solid #cfe3cf;font-size:14px}
.verdict.bad{background:#fbf1f1;border-color:#e8c8c8} .verdict b{margin-right:6px} .verdict.bad li{color:#222;font-weight:normal} .verdict.bad b{color:#aa1111} .verdict ul{margin:4px 0 0 0;padding-left:18px} code{background:#f4f4f4;padding:1px 4px;border-radius:3px}
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

const SEED_MARKERS: MarkerShape[] = ['circle', 'square', 'triangle', 'diamond'];
const bitsName = (bits: number) => `${bits}-bit`;

function familyCharts(demo: DemoResults, taskId: string, family: Family): string {
  const runs = demo.runs.filter((r) => r.task === taskId && r.spec.family === family);
  const groups = DRAW_ORDER.map((key) => ({ key, runs: runs.filter((r) => styleOf(r.spec) === key) })).filter((g) => g.runs.length);
  const style = (key: StyleKey, i: number, extra: Partial<Series> = {}) => {
    const st = STYLES[key];
    return { color: st.color, width: st.width, ...('dash' in st ? { dash: st.dash } : {}), marker: st.marker, markOffset: i * 7, ...extra };
  };
  const steps = Math.max(1, ...runs.map((r) => r.trainLoss.length));
  const train: Series[] = groups.map((g, i) => ({
    label: specLabel(g.runs[0].spec),
    ...style(g.key, i, { markEvery: Math.max(1, Math.round(steps / 8)) }),
    points: smooth(meanCurve(g.runs.map((r) => r.trainLoss))).map((y, k) => [k + 1, y] as [number, number]),
  }));
  const evalMean = (g: (typeof groups)[number], pick: (e: RunResult['evals'][number]) => number | undefined) =>
    g.runs[0].evals.map((e, i) => [e.step, stat(g.runs.map((r) => pick(r.evals[i] ?? e) ?? NaN)).mean] as [number, number]);
  const evalSeries: Series[] = groups.map((g, i) => ({ label: specLabel(g.runs[0].spec), ...style(g.key, i, { markers: true }), points: evalMean(g, (e) => e.loss) }));
  const hasAccuracy = runs.length > 0 && runs.every((r) => r.evals.every((e) => e.accuracy !== undefined));
  const accSeries: Series[] = hasAccuracy ? groups.map((g, i) => ({ label: specLabel(g.runs[0].spec), ...style(g.key, i, { markers: true }), points: evalMean(g, (e) => e.accuracy) })) : [];
  const seeds = groups[0]?.runs.length ?? 0;
  // Relative gap per seed and precision: (low-bit − 32-bit) / 32-bit held-out loss at each
  // evaluation (same seed = same data), against the ±1% band of the claim.
  const r32 = runs.filter((r) => r.spec.kind !== 'tfjs' && r.spec.bits === 32);
  const gap: Series[] = groups
    .filter((g) => g.key === 'bits8' || g.key === 'bits4')
    .flatMap((g) =>
      g.runs.flatMap((a, i) => {
        const b = r32.find((r) => r.seed === a.seed);
        if (!b) return [];
        const points = a.evals
          .filter((e) => e.step > 0)
          .map((e) => {
            const base = b.evals.find((x) => x.step === e.step)?.loss ?? NaN;
            return [e.step, (100 * (e.loss - base)) / base] as [number, number];
          });
        const st = STYLES[g.key];
        return [{ label: `${bitsName(a.spec.bits)}, seed ${a.seed}`, color: st.color, width: 1.6, dash: 'dash' in st ? st.dash : undefined, markers: true, marker: SEED_MARKERS[i % SEED_MARKERS.length], points }];
      }),
    );
  if (gap.length) gap.push({ label: 'no difference', color: '#999999', dash: '3 3', width: 1, points: gap[0].points.map(([x]) => [x, 0] as [number, number]) });
  const label = FAMILIES[family].label;
  const lowBits = [...new Set(runs.filter((r) => r.spec.bits !== 32).map((r) => bitsName(r.spec.bits)))].join(' and ');
  const taskInfo = demo.tasks.find((t) => t.id === taskId)!;
  const band = { lo: -100 * TARGETS.lossRelative, hi: 100 * TARGETS.lossRelative, label: `target: within ±${100 * TARGETS.lossRelative}%` };
  return `<h3>${esc(label)}: ${esc(lowBits || 'low-bit')} vs 32-bit</h3><div class="charts">${lineChart(train, {
    title: `${label}: training loss (EMA, mean of ${seeds} seed${seeds > 1 ? 's' : ''})`,
    xLabel: 'step',
    yLabel: 'batch loss',
    logY: true,
  })}${lineChart(evalSeries, { title: `${label}: ${taskInfo.lossLabel}`, xLabel: 'step', yLabel: 'loss', logY: true })}${
    accSeries.length ? lineChart(accSeries, { title: `${label}: test accuracy`, xLabel: 'step', yLabel: 'accuracy %' }) : ''
  }${gap.length ? lineChart(gap, { title: `${label}: held-out loss vs 32-bit`, xLabel: 'step', yLabel: 'Δ loss (%)', band }) : ''}</div>`;
}

/**
 * The claim's chart: per optimizer variant, its state and the training memory it implies
 * (weights and gradients in float32, 4 B each per parameter, plus the state as measured;
 * activations are left out, they do not depend on the optimizer).
 */
export function memoryCharts(ts: VariantSummary[]): string {
  const variants = [...ts].sort((a, b) => a.spec.family.localeCompare(b.spec.family) || DRAW_ORDER.indexOf(styleOf(a.spec)) - DRAW_ORDER.indexOf(styleOf(b.spec)));
  const ref = (s: VariantSummary) => ts.find((x) => x.spec.family === s.spec.family && x.spec.bits === 32 && x.spec.kind !== 'tfjs' && x.spec.kind === (s.spec.kind === 'tfjs' ? x.spec.kind : s.spec.kind));
  const share = (v: number, base: number | undefined) => (base ? ` (${((100 * v) / base).toFixed(1)}% of 32-bit)` : '');
  const state: Bar[] = variants.map((s) => ({
    label: specLabel(s.spec),
    segments: [{ label: 'optimizer state', value: s.stateBytes, color: STYLES[styleOf(s.spec)].color }],
    note: `${bytes(s.stateBytes)}${share(s.stateBytes, ref(s)?.stateBytes)}`,
  }));
  const total: Bar[] = variants.map((s) => {
    const t = 8 * s.params + s.stateBytes;
    const r = ref(s);
    return {
      label: specLabel(s.spec),
      segments: [
        { label: 'weights (4 B/param)', value: 4 * s.params, color: '#c7d7e8' },
        { label: 'gradients (4 B/param)', value: 4 * s.params, color: '#9fb8d1' },
        { label: 'optimizer state', value: s.stateBytes, color: STYLES[styleOf(s.spec)].color },
      ],
      note: `${bytes(t)}${share(t, r ? 8 * r.params + r.stateBytes : undefined)}`,
    };
  });
  return `<div class="charts">${barChart(state, { title: 'Optimizer state, as held at the end of training', xLabel: 'bytes', format: bytes })}${barChart(total, {
    title: 'Training memory = weights + gradients + optimizer state',
    xLabel: 'bytes (activations left out)',
    format: bytes,
  })}</div>`;
}

const twinName = (t: TwinComparison) => `${esc(t.task)} / ${esc(FAMILIES[t.family as Family]?.label ?? t.family)} ${t.bits}-bit`;

function comparisonRows(c: TwinComparison[]): string[][] {
  return c.map((t) => {
    const byName = Object.fromEntries(checks(t).map((k) => [k.name, k]));
    const word = (name: 'loss' | 'accuracy' | 'state') => {
      const k = byName[name];
      return k ? mark(k.ok, k.ok ? '✓ within target' : '✗ outside target') : '';
    };
    return [
      twinName(t),
      lossCell(t.bits32),
      lossCell(t.bits8),
      `${pct(t.lossRelative)} ${word('loss')}`,
      t.accuracyPoints === undefined ? '–' : `${accCell(t.bits32)} → ${accCell(t.bits8)} (${t.accuracyPoints >= 0 ? '+' : ''}${t.accuracyPoints.toFixed(2)} pt) ${word('accuracy')}`,
      t.quantized ? `${(100 * t.quantized.stateRatio).toFixed(1)}% ${word('state')}` : `${(100 * t.stateRatio).toFixed(1)}% ${word('state')}`,
      `${bytes(t.bits32.stateBytes)} → ${bytes(t.bits8.stateBytes)} (${(100 * t.stateRatio).toFixed(1)}%)` +
        (t.quantized && t.quantized.float32Params ? `<br><span class="muted">${esc(remainderText(t).replace(/^whole model [^;]*; /, ''))}</span>` : ''),
      mark(checks(t).every((k) => k.ok), esc(verdictText(t))),
    ];
  });
}

function demoSection(demo: DemoResults): string {
  const summaries = summarize(demo.runs);
  const twins = compareTwins(summaries);
  const parts: string[] = [];
  parts.push(`<h2>8-bit vs 32-bit: the verdict</h2>`);
  parts.push(
    `<p class="muted">Targets (the paper's claim): final loss within ${100 * TARGETS.lossRelative}% (relative) of the 32-bit twin, accuracy within ${TARGETS.accuracyPoints} points, ` +
      `state of the quantized tensors at most ${(100 * TARGETS.stateRatio[8]).toFixed(0)}% of 32-bit for 8-bit (the format is 25.4%) and ${(100 * TARGETS.stateRatio[4]).toFixed(0)}% for 4-bit (13.3%). ` +
      `${demo.seeds.length > 1 ? `Means over seeds ${demo.seeds.join(', ')}; ± is the standard deviation over seeds.` : `One seed (${demo.seeds[0]}): run with <code>--seeds 3</code> for the spread.`}</p>`,
  );
  parts.push(table(['task / optimizer', 'loss 32-bit', 'loss low-bit', 'Δ loss', 'accuracy % (Δ)', 'state of quantized tensors', 'whole-model state', 'verdict'], comparisonRows(twins)));
  parts.push(
    `<p class="muted">The state target applies to the tensors the optimizer quantizes. The rest keep 32-bit state by design: StableEmbedding's weights (the paper keeps them 32-bit for stability) ` +
      `and tensors under 4096 elements (biases, layer norms; min8bitSize, as in the reference library). That remainder is structural, not a loss of the method: on a small model it weighs more, ` +
      `so the whole-model ratio is higher than the quantized tensors' ratio, and it falls as the model grows.</p>`,
  );
  for (const task of demo.tasks) {
    const ts = summaries.filter((s) => s.task === task.id);
    if (!ts.length) continue;
    parts.push(`<h2>${esc(task.title)}</h2><p>${esc(task.description)}<br><span class="muted">Data: ${esc(task.dataSource)}. ${task.steps} steps, ${ts[0].params.toLocaleString('en-US')} parameters.</span></p>`);
    const ref = new Map(ts.filter((s) => s.spec.bits === 32 && s.spec.kind !== 'tfjs').map((s) => [s.spec.family, s.stateBytes]));
    // A range only where there are several seeds to span.
    const ranges = ts.some((s) => s.loss.values.length > 1);
    parts.push(
      table(
        ['optimizer', `final ${esc(task.lossLabel)}`, ...(ranges ? ['range over seeds'] : []), 'accuracy %', 'optimizer state', 'vs 32-bit', 'peak tfjs tensors', 'held outside tfjs', 'ms / step'],
        ts.map((s) => [
          esc(specLabel(s.spec)) + (s.diverged ? ` <span class="bad">(${s.diverged} diverged)</span>` : ''),
          lossCell(s),
          ...(ranges ? [s.loss.values.length > 1 ? `${s.loss.min.toFixed(4)} – ${s.loss.max.toFixed(4)}` : '–'] : []),
          accCell(s),
          bytes(s.stateBytes),
          ref.has(s.spec.family) ? `${((100 * s.stateBytes) / ref.get(s.spec.family)!).toFixed(1)}%` : '–',
          bytes(s.peakTensorBytes),
          bytes(s.offTensorBytes),
          s.msPerStep.toFixed(1),
        ]),
      ),
    );
    parts.push(`<h3>Memory</h3>${memoryCharts(ts)}`);
    const lowTwins = twins.filter((t) => t.task === task.id && t.split);
    if (lowTwins.length) parts.push(`<ul class="muted">${lowTwins.map((t) => `<li>${twinName(t)}: ${esc(remainderText(t))}.</li>`).join('')}</ul>`);
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
        const cs = checks(t);
        const ok = cs.every((c) => c.ok);
        return `<div class="verdict${ok ? '' : ' bad'}"><b>${twinName(t)}: ${esc(verdictText(t))}</b><ul>${cs
          .map((c) => `<li>${c.ok ? '✓' : '✗'} ${esc(c.text)}</li>`)
          .join('')}<li class="muted">${esc(remainderText(t))}</li></ul></div>`;
      })
    : [];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bitopt report: 8-bit and 4-bit vs 32-bit optimizers</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${CSS}</style></head>
<body>
<h1>bitopt: 8-bit and 4-bit optimizers, trained side by side</h1>
<p class="muted">${env ? `${esc(env.createdAt)} · <code>${esc(env.command)}</code> · ${esc(env.machine)} · Node ${esc(env.node)} · tfjs backend ${esc(env.tfBackend)}` : ''}</p>
<p>Block-wise 8-bit (and 4-bit) optimizer states (Dettmers et al., <i>8-bit Optimizers via Block-wise Quantization</i>, ICLR 2022) against their 32-bit twins
and TensorFlow.js's own float32 Adam, on real data. Same seed = same initial weights and same batches for every optimizer.</p>
<div class="verdicts">${verdicts.join('')}</div>
${data.demo ? demoSection(data.demo) : '<p class="muted">No demo results yet: run <code>npx bitopt demo</code>.</p>'}
${data.ablation ? ablationSection(data.ablation) : '<p class="muted">No ablation results yet: run <code>npx bitopt ablation</code>.</p>'}
${budgetSection(data.budget)}
${data.capacity ? capacitySection(data.capacity) : ''}
<h2>How it was measured</h2>
<ul>
<li><b>Final loss</b>: loss on held-out data (MNIST test digits, Brown Corpus validation samples) after the last step; accuracy on the MNIST test digits.</li>
<li><b>Optimizer state</b>: bytes of state the optimizer holds (bitopt: <code>stateBytes()</code>: codes + absmax + float32 states; tfjs Adam: its two float32 accumulators).</li>
<li><b>Peak tfjs tensors</b>: <code>tf.profile</code>'s peak bytes of live tensors during one training step (weights, gradients, activations; tfjs Adam's state is in here too).
<b>Held outside tfjs</b>: bitopt keeps its optimizer state in its own memory, not in tfjs tensors. Runs of the core API (<code>--via core</code>, the CPU default) also keep the float32 weights the core optimizer updates; the tfjs adapter (<code>--via tfjs</code>, the capacity task) keeps no copy of the weights.</li>
<li><b>ms / step</b>: wall time of forward, backward and update, averaged over the run (excludes evaluation).</li>
</ul>
</body></html>
`;
}
