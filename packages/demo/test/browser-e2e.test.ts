/**
 * End to end in a real browser: bundles the library's browser entry `bitopt/browser` as a user's
 * bundler would (no Node built-ins allowed), builds the web/ page with Vite, serves it on 127.0.0.1 and drives Debian's Chromium headless
 * through playwright-core. WebGPU there runs on SwiftShader (a CPU Vulkan driver shipped with
 * chromium), so this needs no GPU. The page trains the MNIST MLP with Adam8bit and Adam side
 * by side; we check the WGSL model against the CPU reference, that both losses fall and that
 * the 8-bit optimizer state is about a quarter of the float32 one. Screenshot:
 * test-artifacts/browser.png.
 *
 * Needs `apt-get install -y chromium` (or BITOPT_CHROMIUM=/path/to/chrome).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import { build as esbuild } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';
import { build as viteBuild } from 'vite';

const ROOT = resolve(import.meta.dirname, '..');
/** The `bitopt` library package (the repository root), as this package resolves it. */
const LIBRARY = resolve(createRequire(import.meta.url).resolve('bitopt/package.json'), '..');
const CHROMIUM = process.env.BITOPT_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test-artifacts');

/** Flags for headless Chromium with WebGPU on SwiftShader and no network chatter (docs/browser.md). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--disable-dev-shm-usage',
];

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.bin': 'application/octet-stream', '.svg': 'image/svg+xml' };

/** A static server with the cross-origin-isolation headers the page asks for (SharedArrayBuffer). */
function serve(dir: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    let file = join(dir, path);
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!file.startsWith(dir) || !existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
    });
    res.end(readFileSync(file));
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/` })));
}

interface RunRecord {
  label: string;
  className: string;
  bits: number;
  kernel: string;
  stateBytes: number;
  losses: number[];
  testAccuracy: number | null;
}
interface Progress {
  state: string;
  error: string | null;
  backend: { kind: string; name: string; limits?: Record<string, number> } | null;
  task: { params: number; steps: number } | null;
  selfCheck: { maxRelError: number; lossGpu: number; lossCpu: number } | null;
  step: number;
  runs: RunRecord[];
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

/** Loads the page with `query`, waits until training is done (or failed); saves a screenshot. */
async function runPage(browser: Browser, url: string, query: string, shot: string): Promise<{ progress: Progress; logs: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const logs: string[] = [];
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  try {
    await page.goto(`${url}?${query}`);
    const finished = await page
      .waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state ?? ''), null, { timeout: 150_000, polling: 500 })
      .then(() => true, () => false);
    const progress = JSON.parse((await page.locator('#progress').textContent()) ?? 'null') as Progress;
    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(join(ARTIFACTS, '.gitignore'), '*\n');
    await page.screenshot({ path: join(ARTIFACTS, shot), fullPage: true });
    writeFileSync(join(ARTIFACTS, shot.replace(/\.png$/, '.json')), JSON.stringify(progress, null, 1));
    assert.ok(finished, `the page did not finish in time: state ${progress.state}, step ${progress.step}\n${logs.join('\n')}`);
    assert.equal(progress.state, 'done', `page ended in state ${progress.state}: ${progress.error}\n${logs.join('\n')}`);
    return { progress, logs };
  } finally {
    await page.close();
  }
}

/** Both runs (8-bit first, then 32-bit) finished every step with a falling loss; returns the 8-bit/32-bit state ratio. */
function checkRuns(progress: Progress, steps: number, classes: [string, string]): number {
  assert.equal(progress.step, steps);
  const [eight, full] = progress.runs;
  assert.deepEqual([eight.className, full.className], classes);
  for (const r of progress.runs) {
    assert.equal(r.losses.length, steps);
    assert.ok(r.losses.every(Number.isFinite), `${r.label}: non-finite loss`);
    const first = mean(r.losses.slice(0, 5));
    const last = mean(r.losses.slice(-5));
    console.log(`  ${r.className} on ${r.kernel}: loss ${first.toFixed(3)} (steps 1-5) → ${last.toFixed(3)} (last 5); state ${r.stateBytes} B; test accuracy ${r.testAccuracy}%`);
    // From ln(10) ≈ 2.30 at initialization; Adam at lr 1e-3 cuts it by far more than 25% in 25 steps.
    assert.ok(last < 0.75 * first, `${r.label}: loss did not fall (${first} → ${last})`);
    assert.ok(r.testAccuracy !== null && r.testAccuracy > 50, `${r.label}: test accuracy ${r.testAccuracy}%`);
  }
  // Float32 Adam keeps two float32 states per parameter: at least 8 B/param.
  const params = progress.task!.params;
  assert.ok(full.stateBytes >= 8 * params, `32-bit state ${full.stateBytes} B < 8 × ${params}`);
  const ratio = eight.stateBytes / full.stateBytes;
  console.log(`  8-bit / 32-bit state: ${eight.stateBytes} / ${full.stateBytes} B = ${ratio.toFixed(3)}`);
  // 2 B/param of codes + absmax per 256 values, with small tensors (< 4096) kept in float32.
  assert.ok(ratio > 0.22 && ratio < 0.3, `8-bit state is ${ratio} of 32-bit, expected about a quarter`);
  return ratio;
}

describe('browser: the web/ page in headless Chromium (WebGPU on SwiftShader)', () => {
  let outDir = '';
  let server: Server | undefined;
  let url = '';
  let browser: Browser | undefined;

  async function launch(): Promise<Browser> {
    assert.ok(
      existsSync(CHROMIUM),
      `Chromium not found at ${CHROMIUM}: install it with \`apt-get install -y chromium\` (Debian; it also brings SwiftShader for WebGPU without a GPU) or set BITOPT_CHROMIUM to a Chrome/Chromium binary`,
    );
    browser ??= await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS }); // a fresh temporary profile per launch
    return browser;
  }

  before(async () => {
    outDir = mkdtempSync(join(tmpdir(), 'bitopt-web-'));
    await viteBuild({ configFile: join(ROOT, 'web/vite.config.ts'), logLevel: 'warn', build: { outDir, emptyOutDir: true } });
    const served = await serve(outDir);
    server = served.server;
    url = served.url;
  });

  after(async () => {
    await browser?.close();
    server?.close();
    if (outDir) rmSync(outDir, { recursive: true, force: true });
  });

  test('the browser entry bundles for platform=browser without Node built-ins or the webgpu package', async () => {
    // esbuild fails on any import of a Node built-in when bundling for the browser.
    const result = await esbuild({
      stdin: { contents: "export * from 'bitopt/browser';", resolveDir: ROOT, loader: 'js' },
      absWorkingDir: ROOT,
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    assert.ok(inputs.some((p) => p.includes('kernels/webgpu/optimizer')), 'the WebGPU optimizer is part of the bundle');
    assert.ok(inputs.some((p) => p.includes('kernels/cpu/wasm-kernel')), 'the WebAssembly kernel is part of the bundle');
    assert.deepEqual(inputs.filter((p) => /node_modules\/webgpu\/|^node:|\(disabled\)/.test(p)), []);
    assert.ok(existsSync(join(outDir, 'index.html')) && existsSync(join(outDir, 'mnist.bin')), 'vite build wrote index.html and mnist.bin');
  });

  test("a bundler resolves 'bitopt/browser' through the package exports (dist/)", async () => {
    const entry = join(LIBRARY, 'dist/browser/index.js');
    assert.ok(existsSync(entry), `${entry} is missing: run \`npm run build\` at the repository root first (npm test does)`);
    const result = await esbuild({
      stdin: { contents: "export { Adam8bit, createWebgpuOptimizer, requestBrowserWebgpu } from 'bitopt/browser';", resolveDir: ROOT, loader: 'js' },
      absWorkingDir: ROOT,
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    assert.ok(inputs.some((p) => resolve(ROOT, p) === entry), `resolved to ${inputs.filter((p) => p.includes('browser')).join(', ')}`);
    assert.deepEqual(inputs.filter((p) => /node_modules\/webgpu\/|^node:|\(disabled\)/.test(p)), []);
  });

  test('WebGPU: the WGSL model matches the CPU reference, loss falls, 8-bit state ≈ 1/4 of 32-bit', { timeout: 180_000 }, async () => {
    const steps = 25;
    const { progress } = await runPage(await launch(), url, `autostart=1&backend=webgpu&optimizer=adam&precision=both&steps=${steps}&batch=64`, 'browser.png');
    assert.equal(progress.backend?.kind, 'webgpu', 'the page runs on WebGPU');
    console.log(`  adapter: ${progress.backend?.name}; limits ${JSON.stringify(progress.backend?.limits)}`);
    const check = progress.selfCheck!;
    assert.ok(check.maxRelError < 1e-4, `GPU gradients differ from the CPU reference: max relative error ${check.maxRelError}`);
    assert.ok(Math.abs(check.lossGpu - check.lossCpu) < 1e-4 * check.lossCpu, `loss ${check.lossGpu} (GPU) vs ${check.lossCpu} (CPU)`);
    assert.ok(progress.runs.every((r) => r.kernel === 'webgpu'));
    checkRuns(progress, steps, ['Adam8bit', 'Adam']);
  });

  test('CPU fallback: WebAssembly kernel in the tab (cross-origin isolated page)', { timeout: 120_000 }, async () => {
    const steps = 25;
    const { progress } = await runPage(await launch(), url, `autostart=1&backend=cpu&optimizer=adam&precision=both&steps=${steps}&batch=64`, 'browser-cpu.png');
    assert.equal(progress.backend?.kind, 'cpu');
    assert.ok(progress.runs.every((r) => /^wasm-simd/.test(String(r.kernel))), `CPU kernels: ${progress.runs.map((r) => r.kernel).join(', ')}`);
    const ratio = checkRuns(progress, steps, ['Adam8bit', 'Adam']);
    // Exact on the CPU: Adam8bit keeps codes (1 B) + one float32 absmax per 256 values for both
    // states of the tensors with ≥ 4096 elements, float32 states for the rest.
    const sizes = [784, 256, 128, 10];
    let eight = 0;
    let full = 0;
    for (let l = 0; l + 1 < sizes.length; l++) {
      for (const n of [sizes[l] * sizes[l + 1], sizes[l + 1]]) {
        full += 8 * n;
        eight += n >= 4096 ? 2 * (n + 4 * Math.ceil(n / 256)) : 8 * n;
      }
    }
    assert.equal(ratio, eight / full);
  });
});
