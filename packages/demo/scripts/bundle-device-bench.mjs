#!/usr/bin/env node
/**
 * Bundles the WebGPU step benchmark and the GPU correctness suites for a bare GPU host (no
 * node_modules there): .device-bundle/bench/bench-webgpu.mjs, test-webgpu-encode4.mjs,
 * test-webgpu-optimizer.mjs, with `bitopt`, `bitopt/node` and `bitopt/tfjs` taken from src/ (no
 * build needed) and the `webgpu` binding external (it comes with .gpu-runtime, made by
 * packages/demo/scripts/pack-gpu-runtime.sh). On the host, from the repository root:
 *   source .gpu-runtime/activate.sh
 *   node --test .device-bundle/bench/test-webgpu-encode4.mjs .device-bundle/bench/test-webgpu-optimizer.mjs
 *   node .device-bundle/bench/bench-webgpu.mjs --sizes 4,64,256 --iters 30
 *   BITOPT_WGSL_CUTS=decode,encode node .device-bundle/bench/bench-webgpu.mjs --sizes 64   # a profile variant
 * In this bundle only, the kernel template reads BITOPT_WGSL_CUTS (its PROFILE_CUTS line is
 * replaced on load): the library's own build never reads the environment.
 * Usage: node packages/demo/scripts/bundle-device-bench.mjs
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const out = join(repo, '.device-bundle', 'bench');
const entries = {
  'bench-webgpu': 'packages/demo/bench/webgpu.ts',
  'test-webgpu-encode4': 'test/webgpu-encode4.test.ts',
  'test-webgpu-optimizer': 'test/webgpu-optimizer.test.ts',
};
const aliases = { bitopt: 'src/index.ts', 'bitopt/node': 'src/node/index.ts', 'bitopt/tfjs': 'src/tfjs/index.ts' };
const CUTS_LINE = 'const PROFILE_CUTS: readonly string[] = [];';

const plugin = {
  name: 'bitopt-src',
  setup(b) {
    b.onResolve({ filter: /^bitopt(\/node|\/tfjs)?$/ }, (a) => ({ path: join(repo, aliases[a.path]) }));
    b.onLoad({ filter: /src[\\/]kernels[\\/]webgpu[\\/]template\.ts$/ }, (a) => {
      const text = readFileSync(a.path, 'utf8');
      // Without the line (a template with no profiling cuts) the bundle is the plain kernel.
      if (!text.includes(CUTS_LINE)) return undefined;
      const env = "(process.env.BITOPT_WGSL_CUTS ?? '').split(',').filter(Boolean);";
      return { contents: text.replace(CUTS_LINE, `const PROFILE_CUTS: readonly string[] = ${env}`), loader: 'ts' };
    });
  },
};

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, join(repo, v)])),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // The suites' top-level fixtures carry side-effect-free annotations that must not drop them.
  ignoreAnnotations: true,
  external: ['webgpu'],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  outdir: out,
  outExtension: { '.js': '.mjs' },
  plugins: [plugin],
  logLevel: 'warning',
});
console.log(`wrote ${out}: ${Object.keys(entries).map((k) => `${k}.mjs`).join(', ')}`);
