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
    for (const h of ['loss 32-bit', 'loss 8-bit', 'Δ loss', 'optimizer state']) assert.ok(headers.includes(h), h);
  });

  it('has SVG loss curves of 8-bit vs 32-bit for each optimizer family, following the runs', () => {
    const svgs = all(doc, 'svg');
    assert.equal(svgs.length, 3 * 2); // (training curve + held-out loss + 8-bit − 32-bit gap) × (adam, lion)
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
    assert.equal(all(parse(page), 'svg').length, 6);
    assert.equal(JSON.parse(readFileSync(join(dir, 'demo-results.json'), 'utf8')).runs.length, demo.runs.length);
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
    assert.match(stdout, /8-bit vs 32-bit twin/);
    assert.match(stdout, /A bigger model in the same memory/);
    assert.equal(all(parse(readFileSync(join(out, 'index.html'), 'utf8')), 'svg').length, 3);
  });

  it('says clearly that --backend webgpu drives bitopt through the tfjs adapter, not --via core', async () => {
    await assert.rejects(run(process.execPath, [...cli, 'demo', '--backend', 'webgpu', '--via', 'core']), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr, /bitopt: --via core: with --backend webgpu bitopt runs through its TensorFlow.js adapter \(--via tfjs/);
      return true;
    });
  });
});
