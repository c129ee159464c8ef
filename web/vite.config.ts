/**
 * The demo page: `npm run web` (dev server) or `npm run web:build` (static files in
 * web/dist). `bitopt/browser` resolves to the TypeScript sources, as a user's bundler would
 * resolve the package's `browser` export to dist/.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { mnistAsset } from './mnist-asset.js';

const src = (p: string) => fileURLToPath(new URL(`../src/${p}`, import.meta.url));

// The WebAssembly kernel is embedded into the sources by `npm run build` (gitignored): make it
// here on a fresh checkout so that `npm run web` works on its own.
if (!existsSync(src('kernels/cpu/generated/kernels-wasm.ts'))) {
  execFileSync(process.execPath, [fileURLToPath(new URL('../scripts/build-wasm.mjs', import.meta.url))], { stdio: 'inherit' });
}

// Cross-origin isolation gives the page SharedArrayBuffer, which the WebAssembly CPU kernels need.
const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  resolve: { alias: { 'bitopt/browser': src('browser/index.ts') } },
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
