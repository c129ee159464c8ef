/**
 * The HTML report renders from real (short) runs: the document is well-formed, every
 * optimizer family has SVG loss curves for its 8-bit and 32-bit variants whose points follow
 * the recorded losses, and the tables carry the numbers. Also the CLI end to end.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseSeeds } from '../src/cli/demo.js';
import { createOptimizerFactory } from '../src/demo/optimizers.js';
import { renderReport } from '../src/demo/report/html.js';
import { ticks } from '../src/demo/report/svg.js';
import type { DemoResults } from '../src/demo/results.js';
import { runDemo, writeReport } from '../src/demo/run-demo.js';
import { budgetReport } from '../src/demo/budget.js';

interface Element {
  name: string;
  attrs: Record<string, string>;
  children: Element[];
  text: string;
}

const VOID = new Set(['meta', 'br', 'hr', 'img', 'input', 'link']);

/** A small strict HTML/SVG parser: throws on unbalanced or mismatched tags. */
function parse(html: string): Element {
  const root: Element = { name: '#root', attrs: {}, children: [], text: '' };
  const stack = [root];
  const re = /<!--[\s\S]*?-->|<!doctype[^>]*>|<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+(?:="[^"]*")?)*)\s*(\/?)>|([^<]+)/gi;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(html))) {
    if (m.index !== consumed) throw new Error(`unparsable markup at ${consumed}: ${html.slice(consumed, consumed + 40)}`);
    consumed = re.lastIndex;
    const [, close, rawName, attrText, selfClose, text] = m;
    const top = stack[stack.length - 1];
    if (text !== undefined) {
      top.text += text;
      continue;
    }
    if (!rawName) continue;
    const name = rawName.toLowerCase();
    if (close) {
      if (top.name !== name) throw new Error(`</${name}> closes <${top.name}>`);
      stack.pop();
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of attrText.matchAll(/([\w:-]+)(?:="([^"]*)")?/g)) attrs[a[1]] = a[2] ?? '';
    const el: Element = { name, attrs, children: [], text: '' };
    top.children.push(el);
    if (!selfClose && !VOID.has(name)) stack.push(el);
    if (name === 'style') {
      const end = html.indexOf('</style>', consumed);
      el.text = html.slice(consumed, end);
      consumed = re.lastIndex = end;
    }
  }
  if (consumed !== html.length) throw new Error('trailing markup');
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1].name}>`);
  return root;
}

function all(el: Element, name: string): Element[] {
  return el.children.flatMap((c) => [...(c.name === name ? [c] : []), ...all(c, name)]);
}

function textOf(el: Element): string {
  return el.text + el.children.map(textOf).join('');
}

describe('demo report', () => {
  let demo: DemoResults;
  let html: string;
  let doc: Element;
  before(async () => {
    demo = await runDemo({
      tasks: ['mnist'],
      families: ['adam', 'lion'],
      seeds: [1, 2],
      steps: 8,
      out: '',
      tfBackend: 'wasm',
      tfjsBaseline: true,
      command: 'test',
      log: () => {},
      progress: false,
      factory: undefined,
    });
    html = renderReport({ demo, budget: budgetReport() });
    doc = parse(html);
  });

  it('is well-formed HTML with a title and the verdict table', () => {
    assert.equal(all(doc, 'html').length, 1);
    assert.match(textOf(all(doc, 'title')[0]), /bitopt/);
    const headers = all(doc, 'th').map(textOf);
    for (const h of ['loss 32-bit', 'loss low-bit', 'Δ loss', 'state of quantized tensors', 'whole-model state', 'verdict']) assert.ok(headers.includes(h), h);
  });

  it('has SVG loss curves of 8-bit vs 32-bit for each optimizer family, following the runs', () => {
    const svgs = all(doc, 'svg');
    // (training loss + held-out loss + accuracy + low-bit − 32-bit gap) × (adam, lion) + 2 memory charts
    assert.equal(svgs.length, 4 * 2 + 2);
    const curves = svgs.flatMap((s) => all(s, 'path')).filter((p) => p.attrs.class === 'curve');
    const series = curves.map((p) => p.attrs['data-series']);
    for (const name of ['bitopt Adam', 'bitopt Adam8bit', 'tfjs Adam (float32)', 'bitopt Lion', 'bitopt Lion8bit']) {
      assert.ok(series.includes(name), `${name} in ${series.join(', ')}`);
    }
    // The training-loss path of Adam8bit has one point per step, all inside the plot.
    const p = curves.find((c) => c.attrs['data-series'] === 'bitopt Adam8bit')!;
    const points = [...p.attrs.d.matchAll(/[ML]([\d.]+),([\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    assert.equal(points.length, 8);
    assert.ok(points.every(([x, y]) => x >= 56 && x <= 560 && y >= 28 && y <= 320));
    // Losses fall, so the curve's last point is lower on the plot (larger y) than its first.
    assert.ok(points[7][1] > points[0][1]);
  });

  it('tables carry the final losses and state sizes of the runs', () => {
    const text = textOf(doc);
    const r = demo.runs.find((x) => x.spec.id === 'Adam8bit' && x.seed === 1)!;
    const mean = demo.runs.filter((x) => x.spec.id === 'Adam8bit').reduce((a, x) => a + x.final.loss, 0) / 2;
    assert.ok(text.includes(mean.toFixed(4)), `mean loss ${mean.toFixed(4)}`);
    assert.ok(text.includes('476.2 KiB'), `8-bit Adam state (${r.stateBytes} bytes)`);
    assert.match(text, /A bigger model in the same memory/);
  });

  it('writeReport writes index.html and the results JSON, and re-renders from it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bitopt-report-'));
    writeReport(dir, { demo });
    const again = writeReport(dir, {});
    const page = readFileSync(again, 'utf8');
    assert.equal(all(parse(page), 'svg').length, 10);
    assert.equal(JSON.parse(readFileSync(join(dir, 'demo-results.json'), 'utf8')).runs.length, demo.runs.length);
  });

  it('training loss is on a log axis whose ticks sit at log-spaced heights', () => {
    const svgs = all(doc, 'svg').filter((s) => (s.attrs['aria-label'] ?? '').includes('training loss'));
    assert.ok(svgs.length >= 2 && svgs.every((s) => s.attrs['data-scale'] === 'log'));
    const tk = all(svgs[0], 'line').filter((l) => l.attrs.class === 'ytick').map((l) => [Number(l.attrs['data-value']), Number(l.attrs.y1)]);
    assert.ok(tk.length >= 3, `${tk.length} ticks`);
    // On a log axis, height is linear in log10(value): check every tick against the first two.
    const [[a, ya], [b, yb]] = tk;
    const k = (yb - ya) / (Math.log10(b) - Math.log10(a));
    for (const [v, y] of tk) assert.ok(Math.abs(ya + k * (Math.log10(v) - Math.log10(a)) - y) < 0.2, `tick ${v} at ${y}`);
  });

  it('every precision is drawn with its own dash pattern, the 32-bit line first', () => {
    const svg = all(doc, 'svg').find((s) => (s.attrs['aria-label'] ?? '').startsWith('Adam: training loss'))!;
    const curves = all(svg, 'path').filter((p) => p.attrs.class === 'curve');
    assert.equal(curves[0].attrs['data-series'], 'bitopt Adam');
    const dashes = curves.map((c) => c.attrs['stroke-dasharray'] ?? 'solid');
    assert.equal(new Set(dashes).size, curves.length, dashes.join(' | '));
  });

  it('the difference chart has the ±1% band', () => {
    const svg = all(doc, 'svg').find((s) => (s.attrs['aria-label'] ?? '').startsWith('Adam: held-out loss vs 32-bit'))!;
    const band = all(svg, 'rect').find((r) => r.attrs.class === 'band')!;
    assert.equal(Number(band.attrs['data-lo']), -1);
    assert.equal(Number(band.attrs['data-hi']), 1);
    assert.ok(Number(band.attrs.height) > 0);
  });

  it('the memory chart draws state and weights + gradients + state with the bytes of the formula', () => {
    const n = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10;
    const sizes = [784 * 256, 256, 256 * 128, 128, 128 * 10, 10];
    // docs/architecture.md §1.2: per state one code (8-bit) or half a byte (4-bit, blocks of 128), one float32 absmax per block; float32 under 4096 elements.
    const lowBit = (bits: 8 | 4) =>
      sizes.reduce((a, m) => a + (m >= 4096 ? 2 * (bits === 8 ? m + 4 * Math.ceil(m / 256) : Math.ceil(m / 2) + 4 * Math.ceil(m / 128)) : 8 * m), 0);
    const expected: Record<string, number> = { 'bitopt Adam': 8 * n, 'bitopt Adam8bit': lowBit(8), 'tfjs Adam (float32)': 8 * n + 8 };
    if (demo.runs.some((r) => r.spec.id === 'Adam4bit')) expected['bitopt Adam4bit'] = lowBit(4);
    const [stateChart, totalChart] = all(doc, 'svg').filter((s) => s.attrs.class === 'chart bars');
    for (const [label, state] of Object.entries(expected)) {
      const bar = (chart: Element) => all(chart, 'g').find((g) => g.attrs['data-label'] === label)!;
      const seg = (chart: Element) => Object.fromEntries(all(bar(chart), 'rect').map((r) => [r.attrs['data-segment'], Number(r.attrs['data-value'])]));
      assert.equal(seg(stateChart)['optimizer state'], state, label);
      assert.deepEqual(seg(totalChart), { 'weights (4 B/param)': 4 * n, 'gradients (4 B/param)': 4 * n, 'optimizer state': state }, label);
    }
  });

  it('verdicts are in words, and one seed prints no range', () => {
    const text = textOf(doc);
    assert.match(text, /mnist \/ Adam 8-bit: (meets the claim|misses: )/);
    assert.match(text, /loss [+-]\d+\.\d+%: (within|outside) ±1%/);
    const one = renderReport({ demo: { ...demo, seeds: [1], runs: demo.runs.filter((r) => r.seed === 1) }, budget: budgetReport() });
    assert.doesNotMatch(one, /range over seeds/);
    assert.doesNotMatch(one, /(\d\.\d{4}) – \1/);
  });

  it('tick marks are round numbers covering the range', () => {
    assert.deepEqual(ticks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    assert.deepEqual(ticks(1.93, 3.1), [2, 2.25, 2.5, 2.75, 3]);
    // Crossing zero from below: the zero tick is exactly 0 (summing steps gave 6.9e-18).
    assert.deepEqual(ticks(-0.0732, 0.0021), [-0.06, -0.04, -0.02, 0]);
    assert.ok(ticks(-0.0232, 0.0021).includes(0));
  });

  it('parses --seeds as a count or a list', () => {
    assert.deepEqual(parseSeeds('3'), [1, 2, 3]);
    assert.deepEqual(parseSeeds('4,7'), [4, 7]);
    assert.deepEqual(parseSeeds('5,'), [5]);
    assert.throws(() => parseSeeds('x'), /--seeds/);
  });
});

describe('bitopt demo CLI', () => {
  const run = promisify(execFile);
  const cli = ['--import', 'tsx', 'src/cli/index.ts'];
  it('trains, prints the tables and writes the report', async () => {
    const out = mkdtempSync(join(tmpdir(), 'bitopt-cli-'));
    const { stdout } = await run(process.execPath, [...cli, 'demo', '--task', 'mnist', '--steps', '5', '--no-progress', '--out', out], { maxBuffer: 1 << 24 });
    assert.match(stdout, /bitopt Adam8bit/);
    assert.match(stdout, /Low-bit vs 32-bit twin/);
    assert.match(stdout, /mnist \/ Adam 8-bit/);
    assert.match(stdout, /A bigger model in the same memory/);
    assert.equal(all(parse(readFileSync(join(out, 'index.html'), 'utf8')), 'svg').length, 4 + 2);
  });

  it('says clearly that --backend webgpu drives bitopt through the tfjs adapter, not --via core', async () => {
    await assert.rejects(run(process.execPath, [...cli, 'demo', '--backend', 'webgpu', '--via', 'core']), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr, /bitopt: --via core: with --backend webgpu bitopt runs through its TensorFlow.js adapter \(--via tfjs/);
      return true;
    });
  });
});
