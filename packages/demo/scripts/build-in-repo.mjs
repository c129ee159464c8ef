#!/usr/bin/env node
/**
 * The demo workspace's `prepare`: inside the bitopt repository, `npm install` at the root builds
 * the library (dist/, which the demo imports through its workspace link) and then the demo, so
 * the README's `npm install && npx bitopt demo` works on a fresh clone. The library itself has no
 * install-time script (a project that installs bitopt builds nothing), and outside the
 * repository (this package installed from its tarball, which carries dist/) this does nothing.
 */
import { execSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const demo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const root = resolve(demo, '..', '..');
const rootManifest = join(root, 'package.json');
const inRepo = existsSync(join(demo, 'tsconfig.build.json')) && existsSync(rootManifest)
  && (() => {
    const m = JSON.parse(readFileSync(rootManifest, 'utf8'));
    return m.name === 'bitopt' && Array.isArray(m.workspaces) && m.workspaces.includes('packages/demo');
  })();
if (inRepo) {
  execSync('npm run build', { cwd: root, stdio: 'inherit' });
  execSync('npm run build', { cwd: demo, stdio: 'inherit' });
}
