/** A hand-rendered SVG line chart: no dependencies, readable markup, works offline. */
export interface Series {
  label: string;
  color: string;
  points: [number, number][];
  dashed?: boolean;
  /** Draw markers instead of (or as well as) a line. */
  markers?: boolean;
  width?: number;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
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

const fmt = (v: number) => (Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(1) : String(Number(v.toPrecision(4))));

export function lineChart(series: Series[], o: ChartOptions): string {
  const W = o.width ?? 560;
  const H = o.height ?? 320;
  const m = { l: 56, r: 12, t: 28, b: 64 };
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (all.length === 0) return `<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><text x="10" y="20">${escapeHtml(o.title)}: no data</text></svg>`;
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) y1 = y0 + 1;
  const pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;
  const px = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const parts: string[] = [];
  parts.push(`<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(o.title)}">`);
  parts.push(`<text x="${W / 2}" y="16" text-anchor="middle" font-size="13" font-weight="600">${escapeHtml(o.title)}</text>`);
  for (const t of ticks(y0, y1)) {
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${py(t).toFixed(1)}" y2="${py(t).toFixed(1)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${m.l - 4}" y="${(py(t) + 4).toFixed(1)}" text-anchor="end" font-size="10">${fmt(t)}</text>`);
  }
  for (const t of ticks(x0, x1)) {
    parts.push(`<text x="${px(t).toFixed(1)}" y="${H - m.b + 14}" text-anchor="middle" font-size="10">${fmt(t)}</text>`);
  }
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#999"/>`);
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - m.b + 30}" text-anchor="middle" font-size="11">${escapeHtml(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle" font-size="11">${escapeHtml(o.yLabel)}</text>`);
  series.forEach((s, i) => {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    const d = pts.map(([x, y], k) => `${k ? 'L' : 'M'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join('');
    if (pts.length > 1) {
      parts.push(`<path class="curve" data-series="${escapeHtml(s.label)}" d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.width ?? 1.6}"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`);
    }
    if (s.markers || pts.length === 1) {
      for (const [x, y] of pts) parts.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="2.5" fill="${s.color}"/>`);
    }
    const lx = m.l + 8 + (i % 3) * ((W - m.l - m.r) / 3);
    const ly = H - 14 - Math.floor(i / 3) * 0 + (Math.floor(i / 3) - Math.floor((series.length - 1) / 3)) * 13;
    parts.push(`<line x1="${lx}" x2="${lx + 18}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`);
    parts.push(`<text x="${lx + 22}" y="${ly}" font-size="10">${escapeHtml(s.label)}</text>`);
  });
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
