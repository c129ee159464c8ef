/** A small SVG line chart of training loss: raw points faint, a trailing mean on top. */
const NS = 'http://www.w3.org/2000/svg';

export interface Series {
  label: string;
  color: string;
  /** Drawn dashed and on top (the 8-bit curve often lies exactly on the 32-bit one). */
  dashed?: boolean;
  values: number[];
}

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function smooth(v: number[], window: number): number[] {
  const out: number[] = [];
  let sum = 0;
  for (let i = 0; i < v.length; i++) {
    sum += v[i];
    if (i >= window) sum -= v[i - window];
    out.push(sum / Math.min(i + 1, window));
  }
  return out;
}

/** The smallest of 1, 2, 5 × 10^k that is at least `raw` (axis tick spacing). */
function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(Math.max(raw, 1)));
  return [1, 2, 5, 10].map((f) => f * p).find((v) => v >= raw) ?? 10 * p;
}

export function drawLossChart(svg: SVGSVGElement, series: Series[], totalSteps: number): void {
  const W = 640;
  const H = 320;
  const m = { l: 48, r: 12, t: 12, b: 36 };
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.replaceChildren();
  const all = series.flatMap((s) => s.values).filter(Number.isFinite);
  const yMax = Math.max(0.5, Math.ceil((all.length ? Math.max(...all) : 2.5) * 2) / 2);
  const xMax = Math.max(totalSteps, 1);
  const x = (i: number) => m.l + ((W - m.l - m.r) * i) / xMax;
  const y = (v: number) => m.t + (H - m.t - m.b) * (1 - Math.min(v, yMax) / yMax);
  for (let k = 0; k <= 5; k++) {
    const v = (yMax * k) / 5;
    svg.append(el('line', { x1: m.l, x2: W - m.r, y1: y(v), y2: y(v), class: 'grid' }));
    svg.append(el('text', { x: m.l - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'tick' }, v.toFixed(1)));
  }
  for (let i = 0, dx = niceStep(xMax / 5); i <= xMax; i += dx) {
    svg.append(el('text', { x: x(i), y: H - m.b + 16, 'text-anchor': 'middle', class: 'tick' }, String(i)));
  }
  svg.append(el('text', { x: (m.l + W - m.r) / 2, y: H - 4, 'text-anchor': 'middle', class: 'axis' }, 'step'));
  svg.append(el('text', { x: 12, y: (m.t + H - m.b) / 2, 'text-anchor': 'middle', class: 'axis', transform: `rotate(-90 12 ${(m.t + H - m.b) / 2})` }, 'training loss (nats)'));
  const pts = (v: number[]) => v.map((val, i) => `${x(i + 1).toFixed(1)},${y(val).toFixed(1)}`).join(' ');
  // Trailing mean over ~5% of the run: calms batch noise without lagging much.
  const window = Math.min(25, Math.max(1, Math.round(totalSteps / 20)));
  const ordered = [...series.filter((s) => !s.dashed), ...series.filter((s) => s.dashed)];
  for (const s of ordered) svg.append(el('polyline', { points: pts(s.values), fill: 'none', stroke: s.color, 'stroke-opacity': 0.25, 'stroke-width': 1 }));
  for (const s of ordered) {
    const dash: Record<string, string> = s.dashed ? { 'stroke-dasharray': '7 5' } : {};
    svg.append(el('polyline', { points: pts(smooth(s.values, window)), fill: 'none', stroke: s.color, 'stroke-width': 2.5, ...dash }));
  }
  series.forEach((s, si) => {
    svg.append(el('line', { x1: W - m.r - 150, x2: W - m.r - 134, y1: m.t + 8 + si * 20, y2: m.t + 8 + si * 20, stroke: s.color, 'stroke-width': 3, ...(s.dashed ? { 'stroke-dasharray': '5 3' } : ({} as Record<string, string>)) }));
    svg.append(el('text', { x: W - m.r - 130, y: m.t + 11 + si * 20, class: 'legend' }, s.label));
  });
}
