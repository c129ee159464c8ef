/** `bitopt --version`: this package's version and the bitopt library's it runs on. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

function versionOf(packageJson: string | URL): string {
  try {
    return String((JSON.parse(readFileSync(packageJson, 'utf8')) as { version?: unknown }).version ?? 'unknown');
  } catch {
    return 'unknown';
  }
}

/** E.g. "bitopt-demo 0.2.0 (bitopt 0.2.0)". */
export function versionLine(): string {
  // src/cli and dist/cli both sit two levels under the package root.
  const demo = versionOf(new URL('../../package.json', import.meta.url));
  let lib = 'not installed';
  try {
    lib = versionOf(createRequire(import.meta.url).resolve('bitopt/package.json'));
  } catch {
    // bitopt's exports name ./package.json; a library without it reads as 'not installed'.
  }
  return `bitopt-demo ${demo} (bitopt ${lib})`;
}
