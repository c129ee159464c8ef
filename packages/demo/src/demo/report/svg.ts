/** Hand-rendered SVG charts (lines, bars): no dependencies, readable markup, works offline. */
export type MarkerShape = 'circle' | 'square' | 'triangle' | 'diamond';

export interface Series {
  label: string;
  color: string;
  points: [number, number][];
  /** Short dashes (kept for older callers; `dash` takes precedence). */
  dashed?: boolean;
  /** An SVG stroke-dasharray, e.g. '7 4' or '2 3', so overlapping curves stay distinguishable. */
  dash?: string;
  /** Draw markers at every point (evaluations), as well as the line. */
  markers?: boolean;
  /** Marker shape (default circle); with `markEvery`, markers along a dense line. */
  marker?: MarkerShape;
  /** Mark every n-th point (a dense curve: shapes identify it where lines coincide). */
  markEvery?: number;
  /** Offset of the first marked point, so two series' markers do not sit on each other. */
  markOffset?: number;
  width?: number;
}

/** A horizontal band between two y values (e.g. the ±1% target), drawn under the series. */
export interface Band {
  lo: number;
  hi: number;
  label: string;
  color?: string;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  /** Logarithmic y axis (values must be positive; others are left out). */
  logY?: boolean;
  band?: Band;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** "Nice" tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, target = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  // Each tick from its index (not by adding steps), so the tick at zero is exactly 0, not 7e-18.
  for (let k = Math.ceil(lo / step); k * step <= hi + step * 1e-9; k++) out.push(Number((k * step).toPrecision(12)));
  return out;
}

/**
 * Tick values for a log axis over [lo, hi] (lo > 0): 1-2-5 per decade, or finer mantissas when the
 * range spans less than a decade, so a narrow range still gets at least three labelled ticks.
 */
export function logTicks(lo: number, hi: number): number[] {
  if (!(lo > 0) || !(hi > lo)) return [lo];
  const sets = [[1], [1, 2, 5], [1, 1.5, 2, 3, 5, 7], [1, 1.2, 1.4, 1.6, 1.8, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8, 9]];
  let best: number[] = [];
  for (const set of sets) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      for (const m of set) {
        const v = Number((m * 10 ** e).toPrecision(12));
        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
      }
    }
    best = out;
    if (out.length >= 3) return out;
  }
  // Under a tenth of a decade: linear round numbers are still exact positions on a log axis.
  const linear = ticks(lo, hi).filter((v) => v > 0);
  return linear.length > best.length ? linear : best;
}

const fmt = (v: number) => (Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(1) : String(Number(v.toPrecision(4))));

function markerShape(shape: MarkerShape, x: number, y: number, color: string, r = 3): string {
  const [X, Y] = [x.toFixed(1), y.toFixed(1)];
  if (shape === 'square') return `<rect class="marker" x="${(x - r).toFixed(1)}" y="${(y - r).toFixed(1)}" width="${2 * r}" height="${2 * r}" fill="${color}"/>`;
  if (shape === 'triangle') return `<path class="marker" d="M${X},${(y - r * 1.2).toFixed(1)}L${(x + r * 1.1).toFixed(1)},${(y + r * 0.8).toFixed(1)}L${(x - r * 1.1).toFixed(1)},${(y + r * 0.8).toFixed(1)}Z" fill="${color}"/>`;
  if (shape === 'diamond') return `<path class="marker" d="M${X},${(y - r * 1.3).toFixed(1)}L${(x + r).toFixed(1)},${Y}L${X},${(y + r * 1.3).toFixed(1)}L${(x - r).toFixed(1)},${Y}Z" fill="${color}"/>`;
  return `<circle class="marker" cx="${X}" cy="${Y}" r="${r - 0.5}" fill="${color}"/>`;
}

const dashOf = (s: Series) => s.dash ?? (s.dashed ? '5 3' : undefined);

export function lineChart(series: Series[], o: ChartOptions): string {
  const W = o.width ?? 560;
  const H = o.height ?? 320;
  const legendRows = Math.ceil(series.length / 2);
  const m = { l: 56, r: 12, t: 28, b: 46 + 14 * legendRows };
  const usable = ([x, y]: [number, number]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logY || y > 0);
  const all = series.flatMap((s) => s.points).filter(usable);
  if (all.length === 0) return `<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><text x="10" y="20">${escapeHtml(o.title)}: no data</text></svg>`;
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  if (o.band) ys.push(o.band.lo, o.band.hi);
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (x1 === x0) x1 = x0 + 1;
  // A log axis maps log10(y); padding and ticks work on that scale.
  const ty = (y: number) => (o.logY ? Math.log10(y) : y);
  let [v0, v1] = [ty(y0), ty(y1)];
  if (v1 === v0) [v0, v1] = o.logY ? [v0 - 0.05, v1 + 0.05] : [v0, v0 + 1];
  const pad = (v1 - v0) * 0.05;
  v0 -= pad;
  v1 += pad;
  const px = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - ((ty(y) - v0) / (v1 - v0)) * (H - m.t - m.b);
  const parts: string[] = [];
  parts.push(`<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(o.title)}"${o.logY ? ' data-scale="log"' : ''}>`);
  parts.push(`<text x="${W / 2}" y="16" text-anchor="middle" font-size="13" font-weight="600">${escapeHtml(o.title)}</text>`);
  if (o.band) {
    const [top, bottom] = [py(o.band.hi), py(o.band.lo)];
    parts.push(
      `<rect class="band" data-lo="${o.band.lo}" data-hi="${o.band.hi}" x="${m.l}" y="${top.toFixed(1)}" width="${W - m.l - m.r}" height="${(bottom - top).toFixed(1)}" fill="${o.band.color ?? '#2ca02c'}" fill-opacity="0.12"/>`,
    );
    parts.push(`<text x="${W - m.r - 4}" y="${(top + 11).toFixed(1)}" text-anchor="end" font-size="10" fill="#2a6a2a">${escapeHtml(o.band.label)}</text>`);
  }
  const yTicks = o.logY ? logTicks(10 ** v0, 10 ** v1) : ticks(v0, v1);
  for (const t of yTicks) {
    parts.push(`<line class="ytick" data-value="${t}" x1="${m.l}" x2="${W - m.r}" y1="${py(t).toFixed(1)}" y2="${py(t).toFixed(1)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${m.l - 4}" y="${(py(t) + 4).toFixed(1)}" text-anchor="end" font-size="10">${fmt(t)}</text>`);
  }
  for (const t of ticks(x0, x1)) {
    parts.push(`<text x="${px(t).toFixed(1)}" y="${H - m.b + 14}" text-anchor="middle" font-size="10">${fmt(t)}</text>`);
  }
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#999"/>`);
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - m.b + 28}" text-anchor="middle" font-size="11">${escapeHtml(o.xLabel)}</text>`);
  parts.push(
    `<text transform="translate(14 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle" font-size="11">${escapeHtml(o.yLabel)}${o.logY ? ' (log scale)' : ''}</text>`,
  );
  series.forEach((s, i) => {
    const pts = s.points.filter(usable);
    const d = pts.map(([x, y], k) => `${k ? 'L' : 'M'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join('');
    const dash = dashOf(s);
    const dashAttr = dash ? ` stroke-dasharray="${dash}"` : '';
    if (pts.length > 1) {
      parts.push(`<path class="curve" data-series="${escapeHtml(s.label)}" d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.width ?? 1.6}"${dashAttr}/>`);
    }
    const shape = s.marker ?? 'circle';
    const every = s.markers || pts.length === 1 ? 1 : s.markEvery;
    if (every) {
      parts.push(`<g data-markers="${escapeHtml(s.label)}">`);
      for (let k = every === 1 ? 0 : (s.markOffset ?? 0) % every; k < pts.length; k += every) parts.push(markerShape(shape, px(pts[k][0]), py(pts[k][1]), s.color));
      parts.push('</g>');
    }
    // Legend: two columns under the plot, the line's dash and marker as drawn.
    const lx = m.l + 4 + (i % 2) * ((W - m.l - m.r) / 2);
    const ly = H - m.b + 44 + Math.floor(i / 2) * 14;
    parts.push(`<line x1="${lx}" x2="${lx + 26}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="${s.width ?? 1.6}"${dashAttr}/>`);
    if (every || s.markEvery) parts.push(markerShape(shape, lx + 13, ly - 4, s.color));
    parts.push(`<text x="${lx + 31}" y="${ly}" font-size="10">${escapeHtml(s.label)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** One bar of a bar chart: stacked segments, left to right. */
export interface Bar {
  label: string;
  segments: { label: string; value: number; color: string }[];
  /** Text after the bar (e.g. the total and its share of the baseline). */
  note: string;
}

/**
 * Horizontal stacked bars on a shared linear axis from 0 (so lengths compare). Each segment
 * carries its value in `data-value`, so a reader (or a test) can check the numbers drawn.
 */
export function barChart(bars: Bar[], o: { title: string; xLabel: string; width?: number; format: (v: number) => string }): string {
  const W = o.width ?? 760;
  const rowH = 22;
  const labelW = 190;
  const noteW = 230;
  const legend = [...new Map(bars.flatMap((b) => b.segments).map((s) => [s.label, s.color])).entries()];
  const m = { t: 30, b: 40 + (legend.length > 1 ? 16 : 0) };
  const H = m.t + bars.length * rowH + m.b;
  const max = Math.max(1, ...bars.map((b) => b.segments.reduce((a, s) => a + s.value, 0)));
  const plotW = W - labelW - noteW;
  const px = (v: number) => labelW + (v / max) * plotW;
  const parts: string[] = [];
  parts.push(`<svg class="chart bars" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(o.title)}">`);
  parts.push(`<text x="${W / 2}" y="16" text-anchor="middle" font-size="13" font-weight="600">${escapeHtml(o.title)}</text>`);
  const axisY = m.t + bars.length * rowH + 4;
  for (const t of ticks(0, max, 4)) {
    parts.push(`<line x1="${px(t).toFixed(1)}" x2="${px(t).toFixed(1)}" y1="${m.t - 4}" y2="${axisY}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${px(t).toFixed(1)}" y="${axisY + 12}" text-anchor="middle" font-size="10">${escapeHtml(o.format(t))}</text>`);
  }
  parts.push(`<text x="${labelW + plotW / 2}" y="${axisY + 26}" text-anchor="middle" font-size="11">${escapeHtml(o.xLabel)}</text>`);
  bars.forEach((b, i) => {
    const y = m.t + i * rowH;
    parts.push(`<g class="bar" data-label="${escapeHtml(b.label)}">`);
    parts.push(`<text x="${labelW - 6}" y="${y + 14}" text-anchor="end" font-size="11">${escapeHtml(b.label)}</text>`);
    let at = 0;
    for (const s of b.segments) {
      const [x0, x1] = [px(at), px(at + s.value)];
      parts.push(`<rect class="segment" data-segment="${escapeHtml(s.label)}" data-value="${s.value}" x="${x0.toFixed(1)}" y="${y + 3}" width="${Math.max(0, x1 - x0).toFixed(1)}" height="${rowH - 6}" fill="${s.color}"/>`);
      at += s.value;
    }
    parts.push(`<text x="${(px(at) + 6).toFixed(1)}" y="${y + 14}" font-size="11">${escapeHtml(b.note)}</text>`);
    parts.push('</g>');
  });
  if (legend.length > 1) {
    legend.forEach(([label, color], k) => {
      const lx = labelW + k * 150;
      parts.push(`<rect x="${lx}" y="${H - 16}" width="12" height="10" fill="${color}"/><text x="${lx + 16}" y="${H - 7}" font-size="10">${escapeHtml(label)}</text>`);
    });
  }
  parts.push('</svg>');
  return parts.join('\n');
}

/** Exponential moving average, so noisy per-batch losses read as a curve. */
export function smooth(values: number[], alpha = 0.05): number[] {
  const out: number[] = [];
  let m = NaN;
  for (const v of values) {
    m = Number.isFinite(m) ? (1 - alpha) * m + alpha * v : v;
    out.push(m);
  }
  return out;
}
