/**
 * Getting a device with the adapter's real limits, and turning WebGPU's asynchronous errors
 * (device loss, uncaptured validation errors, error scopes) into thrown `Error`s.
 */
/// <reference types="@webgpu/types" />

/** GPU tensor: a float32 storage buffer of at least ceil(length/4)*16 bytes (vec4 access). */
export interface GpuTensor {
  /** The storage buffer (float32 values, padded to whole vec4s). */
  buffer: GPUBuffer;
  /** Elements (float32 values) the tensor holds. */
  length: number;
}

/** Bytes a GpuTensor of `length` elements needs (whole vec4s). */
export function gpuTensorBytes(length: number): number {
  return Math.max(16, Math.ceil(length / 4) * 16);
}

/**
 * Requests a device with every numeric limit the adapter offers (the defaults are much lower,
 * e.g. 128 MiB per storage binding) and the features the kernels use when present.
 */
export async function requestWebgpuDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const requiredLimits: Record<string, number> = {};
  for (const key in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof v === 'number') requiredLimits[key] = v;
  }
  const wanted: GPUFeatureName[] = ['timestamp-query', 'subgroups' as GPUFeatureName];
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  errorsOf(device);
  return device;
}

/** Watches one device for loss and uncaptured errors. */
export class DeviceErrors {
  private lost: string | null = null;
  private uncaptured: string | null = null;
  constructor(device: GPUDevice) {
    device.lost.then((info) => {
      this.lost = `${info.reason}: ${info.message}`;
    });
    device.addEventListener('uncapturederror', (e) => {
      this.uncaptured ??= (e as GPUUncapturedErrorEvent).error.message;
    });
  }
  /**
   * Throws if the device was lost. Uncaptured errors are not thrown: bitopt's own work runs in
   * error scopes (`scoped`), so an uncaptured error is another user's of the device (issue 13).
   */
  check(who: string): void {
    if (this.lost !== null) throw new Error(`${who}: the WebGPU device was lost (${this.lost})`);
  }
  /** The first uncaptured error seen on the device (someone else's; for diagnostics), or null. */
  get firstUncaptured(): string | null {
    return this.uncaptured;
  }
}

const watchers = new WeakMap<GPUDevice, DeviceErrors>();

/** The error watcher of `device` (installed on first use). */
export function errorsOf(device: GPUDevice): DeviceErrors {
  let w = watchers.get(device);
  if (!w) watchers.set(device, (w = new DeviceErrors(device)));
  return w;
}

/**
 * Runs `work` (which encodes and submits) inside validation and out-of-memory error scopes;
 * the promise rejects with an Error naming the problem. Work is already enqueued on return.
 */
export function scoped(device: GPUDevice, who: string, work: () => void): Promise<void> {
  errorsOf(device).check(who);
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let validation: Promise<GPUError | null>;
  let oom: Promise<GPUError | null>;
  try {
    work();
  } finally {
    validation = device.popErrorScope();
    oom = device.popErrorScope();
  }
  return Promise.all([validation, oom]).then(([v, o]) => {
    const e = v ?? o;
    if (e) throw new Error(`${who}: WebGPU ${v ? 'validation' : 'out-of-memory'} error: ${e.message}`);
    errorsOf(device).check(who);
  });
}

/** Creates a GPU tensor (STORAGE | COPY_SRC | COPY_DST), optionally filled with `data`. */
export function createGpuTensor(device: GPUDevice, data: Float32Array | number): GpuTensor {
  const length = typeof data === 'number' ? data : data.length;
  const buffer = device.createBuffer({
    size: gpuTensorBytes(length),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  if (typeof data !== 'number' && length > 0) writeGpuTensor(device, { buffer, length }, data);
  return { buffer, length };
}

/** Uploads `data` (length elements) into the tensor. */
export function writeGpuTensor(device: GPUDevice, t: GpuTensor, data: Float32Array): void {
  if (data.length !== t.length) throw new Error(`writeGpuTensor: got ${data.length} values for a tensor of ${t.length}`);
  const padded = data.length % 4 === 0 ? data : (() => {
    const p = new Float32Array(Math.ceil(data.length / 4) * 4);
    p.set(data);
    return p;
  })();
  writeBytes(device, t.buffer, 0, padded);
}

/** queue.writeBuffer of a typed array's bytes. */
export function writeBytes(device: GPUDevice, buffer: GPUBuffer, offset: number, data: ArrayBufferView): void {
  device.queue.writeBuffer(buffer, offset, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
}

/** Reads `bytes` from the start of `buffer` (which needs COPY_SRC usage). */
export async function readBuffer(device: GPUDevice, buffer: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
  const size = Math.ceil(bytes / 4) * 4;
  const staging = device.createBuffer({ size: Math.max(4, size), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    await scoped(device, 'readBuffer', () => {
      const enc = device.createCommandEncoder();
      if (size > 0) enc.copyBufferToBuffer(buffer, offset, staging, 0, size);
      device.queue.submit([enc.finish()]);
    });
    await staging.mapAsync(GPUMapMode.READ);
    return staging.getMappedRange().slice(0, bytes);
  } finally {
    staging.destroy();
  }
}

/** Reads a GPU tensor back into a Float32Array. */
export async function readGpuTensor(device: GPUDevice, t: GpuTensor): Promise<Float32Array> {
  return new Float32Array(await readBuffer(device, t.buffer, t.length * 4));
}
