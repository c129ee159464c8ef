#!/usr/bin/env node
/**
 * The CommonJS build (dist/cjs/), for `require('bitopt')` and its subpaths; run by `npm run build`
 * after the ESM build (dist/).
 *
 * Why a copy of src/: TypeScript emits CommonJS for a file whose nearest package.json says
 * `"type": "commonjs"`, and only then (module NodeNext) keeps `await import(name)` a real dynamic
 * import. That matters for the optional peer `webgpu`, an ES module: `module: "commonjs"` would
 * turn the import into `require()`, which fails on Node before 20.19 and reports it as a missing
 * package. So src/ is copied to build/cjs-src/ beside such a package.json and compiled from
 * there (tsconfig.cjs.json); dist/cjs/package.json marks the output as CommonJS for Node.
 *
 * Usage: node scripts/build-cjs.mjs [outDir]   (default dist/cjs; any other directory for checks)
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = resolve(root, process.argv[2] ?? join('dist', 'cjs'));
const copy = join(root, 'build', 'cjs-src');
const commonjs = JSON.stringify({ type: 'commonjs' }) + '\n';

rmSync(copy, { recursive: true, force: true });
cpSync(join(root, 'src'), copy, { recursive: true });
writeFileSync(join(copy, 'package.json'), commonjs);

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.cjs.json'), '--outDir', outDir], { stdio: 'inherit' });
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'package.json'), commonjs);
rmSync(copy, { recursive: true, force: true });
console.log(`build-cjs: CommonJS build in ${outDir}`);
