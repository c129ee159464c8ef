/**
 * Parameters whose GPU buffer may change from one step to the next, over a WebgpuOptimizer:
 * what a framework adapter needs when the parameter is a framework tensor's own storage (the
 * tfjs adapter steps each variable's buffer in place, and a variable gets another buffer when
 * it is assigned). The optimizer keeps its GpuTensor objects; `point` moves one to this step's
 * buffer before the step.
 *
 * Why a rebind has to be forced: the optimizer builds a tensor's bind groups once and rebuilds
 * them when the gradient's buffer changes (src/kernels/webgpu/optimizer.ts, `bind`), not when
 * the parameter's does. So when a parameter moved while its gradient came in the buffer it was
 * last bound with (tfjs's buffer pool hands the same one back), the gradient is copied into a
 * fresh buffer for that one step, which makes the optimizer bind both anew. This happens only
 * on the step after a move; with a `replaceParam` in the optimizer it would go away.
 */
/// <reference types="@webgpu/types" />
import { gpuTensorBytes, type GpuTensor } from './device.js';

export interface ParamStep {
  /** The parameter as the optimizer knows it (`params[i]`). */
  param: GpuTensor;
  /** The buffer to update this step (at least gpuTensorBytes(length) bytes, STORAGE usage). */
  buffer: GPUBuffer;
  /** This step's gradient. */
  grad: GpuTensor;
}

export class MovableParams {
  /** The gradient buffer each parameter was last stepped with. */
  private readonly lastGrad = new WeakMap<GpuTensor, GPUBuffer>();

  constructor(private readonly device: GPUDevice) {}

  /**
   * Points each parameter at its buffer and returns the gradients to pass to the step. Copies
   * that a forced rebind needs are recorded into `encoder`; the buffers they create are
   * returned in `scratch`, to be destroyed once the step is submitted.
   */
  point(steps: ParamStep[], encoder: GPUCommandEncoder): { grads: GpuTensor[]; scratch: GPUBuffer[] } {
    const scratch: GPUBuffer[] = [];
    const grads = steps.map(({ param, buffer, grad }) => {
      const moved = param.buffer !== buffer;
      param.buffer = buffer;
      let g = grad;
      if (moved && this.lastGrad.get(param) === grad.buffer) {
        const fresh = this.device.createBuffer({ size: gpuTensorBytes(grad.length), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
        if (grad.length > 0) encoder.copyBufferToBuffer(grad.buffer, 0, fresh, 0, grad.length * 4);
        scratch.push(fresh);
        g = { buffer: fresh, length: grad.length };
      }
      this.lastGrad.set(param, g.buffer);
      return g;
    });
    return { grads, scratch };
  }
}
