import { cpus } from 'node:os';
import type { Environment } from './results.js';

export function describeEnvironment(tfBackend: string, command: string): Environment {
  const c = cpus();
  return {
    createdAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    command,
    machine: `${c.length} × ${c[0]?.model?.trim() ?? 'unknown CPU'}`,
    node: process.versions.node,
    tfBackend,
  };
}
