import { cpus } from 'node:os';
import type { Environment } from './results.js';
import { webgpuAdapterName } from './webgpu.js';

export function describeEnvironment(tfBackend: string, command: string): Environment {
  const c = cpus();
  const gpu = tfBackend === 'webgpu' ? (webgpuAdapterName() ?? 'unknown WebGPU adapter') : undefined;
  const host = `${c.length} × ${c[0]?.model?.trim() ?? 'unknown CPU'}`;
  return {
    createdAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    command,
    // The GPU goes into `machine` too, so every table and report header that prints the
    // machine says where a GPU run ran.
    machine: gpu ? `GPU ${gpu} (WebGPU) on ${host}` : host,
    node: process.versions.node,
    tfBackend,
    backend: gpu ? 'webgpu' : 'cpu',
    ...(gpu ? { gpu } : {}),
  };
}
