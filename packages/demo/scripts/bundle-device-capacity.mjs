#!/usr/bin/env node
/**
 * Bundles `bitopt demo --task capacity --backend webgpu` for a bare GPU host (no Node install,
 * no node_modules, no internet), as bundle-device-demo.mjs does for the demo:
 *   .device-bundle/capacity/bitopt-capacity.mjs  the CLI with TensorFlow.js (core, webgpu backend) and bitopt inlined
 *   .device-bundle/capacity/trial-worker.mjs     one capacity trial per process; the CLI forks it from its own directory
 * (.device-bundle/ is at the repository root.) The capacity task needs no data. Node, the
 * `webgpu` binding and the Vulkan loader come from packages/demo/scripts/pack-gpu-runtime.sh
 * (.gpu-runtime/). The command to run on the host, from the repository root, is printed at the end.
 * Usage: node packages/demo/scripts/bundle-device-capacity.mjs [budget MiB, default 8192] [demo package root]
 * The library must be built (dist/: `bitopt` resolves to it).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

// This script is packages/demo/scripts/; the demo package is one up, the repository root (with
// the hoisted node_modules and the built `bitopt` library they link to) three up.
const demo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repo = resolve(demo, '..', '..');
const budgetMib = process.argv[2] ?? '8192';
if (!(Number(budgetMib) > 0)) throw new Error(`budget: expected a number of MiB, got '${budgetMib}'`);
const src = resolve(process.argv[3] ?? demo);
const out = join(repo, '.device-bundle', 'capacity');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// tfjs-core's gradients exist only as extension-less ESM (src/demo/tf.ts loads them through a
// resolve hook); the bundler resolves them, and `mainFields` picks the same ESM build of
// tfjs-core for everything, so there is one copy of it. The worker is named as
// src/demo/capacity/search.ts finds it: `trial-worker` + the CLI's own extension, beside it.
const entry = `
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { Command } from 'commander';
import { registerDemo } from './src/cli/demo.ts';
const program = new Command('bitopt');
registerDemo(program);
await program.parseAsync(process.argv);
`;
const workerEntry = `
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import './src/demo/capacity/trial-worker.ts';
`;
for (const [contents, file] of [[entry, 'bitopt-capacity.mjs'], [workerEntry, 'trial-worker.mjs']]) await build({
  stdin: { contents, resolveDir: src, loader: 'ts', sourcefile: `device-${file}.ts` },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  mainFields: ['module', 'main'],
  nodePaths: [join(repo, 'node_modules')],
  // The native binding comes with .gpu-runtime; the wasm backend is not used on the GPU.
  external: ['webgpu', '@tensorflow/tfjs-backend-wasm'],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  outfile: join(out, file),
  logLevel: 'warning',
});

const cli = relative(repo, join(out, 'bitopt-capacity.mjs'));
console.log(`wrote ${out} (bundle from ${src})`);
console.log('On the GPU host, from the repository root:');
console.log(`source .gpu-runtime/activate.sh; node ${cli} demo --task capacity --backend webgpu --budget-mib ${budgetMib} --bits 8 --no-progress --out /tmp/capacity-webgpu 2>&1 | tail -40`);
