/**
 * The demo page: `npm run web` (dev server) or `npm run web:build` (static files in
 * packages/demo/web/dist), from the repository root or from packages/demo. `bitopt/browser`
 * resolves through the library package's exports to its built dist/, as in a user's project.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { mnistAsset } from './mnist-asset.js';

// The library's browser entry is built by `npm install` (the demo workspace's `prepare`) or `npm run build` at
// the repository root; say so instead of failing on an unresolved import.
const pkgJson = createRequire(import.meta.url).resolve('bitopt/package.json');
// The export's `import` is a path or a { types, default } condition object.
const browserImport = (JSON.parse(readFileSync(pkgJson, 'utf8')) as { exports: Record<string, { import: string | { default: string } }> }).exports['./browser'].import;
const browserEntry = join(dirname(pkgJson), typeof browserImport === 'string' ? browserImport : browserImport.default);
if (!existsSync(browserEntry)) throw new Error(`${browserEntry} is missing: run \`npm run build\` in the bitopt package (the repository root) first`);

// Cross-origin isolation gives the page SharedArrayBuffer, which the WebAssembly CPU kernels need.
const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  plugins: [mnistAsset()],
  server: { host: '127.0.0.1', headers: isolation },
  preview: { host: '127.0.0.1', headers: isolation },
  build: {
    outDir: process.env.BITOPT_WEB_OUT ?? 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // Packing the digits takes a few seconds (JSON parsing); no need to warn about it.
    rolldownOptions: { checks: { bundlerTimings: false } },
  },
});
