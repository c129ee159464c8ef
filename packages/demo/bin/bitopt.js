#!/usr/bin/env node
// The `bitopt` command: runs the compiled CLI (src/cli/index.ts → dist/cli/index.js, built by
// `npm install` at the repository root, through this package's `prepare`, or `npm run build` here).
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli/index.js', import.meta.url);
if (!existsSync(cli)) {
  console.error('bitopt: the demo package is not built (dist/cli/index.js is missing): run `npm install` at the repository root (its prepare builds the library and the demo), or `npm run build && npm run build --workspace packages/demo` there');
  process.exit(1);
}
await import(cli.href);
