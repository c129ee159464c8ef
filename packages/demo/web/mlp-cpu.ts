/**
 * The MLP's forward and backward pass in plain TypeScript: the CPU backend of the page, and
 * the independent reference the WebGPU pass is checked against (selfCheck in main.ts).
 */
export interface LossStats {
  /** Sum over rows of the cross-entropy (nats). */
  lossSum: number;
  correct: number;
}

/** C[M×N] = A[M×K] · B[K×N] (+ bias[N]) (then ReLU): i-k-j order for contiguous access. */
function matmul(a: Float32Array, b: Float32Array, c: Float32Array, m: number, k: number, n: number, bias: Float32Array | null, relu: boolean): void {
  for (let i = 0; i < m; i++) {
    const row = i * n;
    if (bias) c.set(bias, row);
    else c.fill(0, row, row + n);
    for (let p = 0; p < k; p++) {
      const av = a[i * k + p];
      if (av === 0) continue;
      const bp = p * n;
      for (let j = 0; j < n; j++) c[row + j] += av * b[bp + j];
    }
    if (relu) for (let j = row; j < row + n; j++) if (c[j] < 0) c[j] = 0;
  }
}

export class CpuMlp {
  private readonly acts: Float32Array[];
  private readonly deltas: Float32Array[];

  constructor(
    readonly sizes: number[],
    readonly maxRows: number,
  ) {
    this.acts = sizes.slice(1).map((n) => new Float32Array(maxRows * n));
    this.deltas = sizes.slice(1).map((n) => new Float32Array(maxRows * n));
  }

  private get layers(): number {
    return this.sizes.length - 1;
  }

  /** Logits of `rows` images (x is rows × sizes[0]). */
  forward(params: Float32Array[], x: Float32Array, rows: number): Float32Array {
    let input = x;
    for (let l = 0; l < this.layers; l++) {
      matmul(input, params[2 * l], this.acts[l], rows, this.sizes[l], this.sizes[l + 1], params[2 * l + 1], l + 1 < this.layers);
      input = this.acts[l];
    }
    return this.acts[this.layers - 1];
  }

  /** Softmax cross-entropy of the last forward pass; writes d(mean loss)/d(logits) when `dlogits` is given. */
  private crossEntropy(logits: Float32Array, labels: Uint8Array, rows: number, dlogits: Float32Array | null): LossStats {
    const n = this.sizes[this.layers];
    let lossSum = 0;
    let correct = 0;
    for (let r = 0; r < rows; r++) {
      const o = r * n;
      let max = logits[o];
      let arg = 0;
      for (let j = 1; j < n; j++) if (logits[o + j] > max) [max, arg] = [logits[o + j], j];
      let sum = 0;
      for (let j = 0; j < n; j++) sum += Math.exp(logits[o + j] - max);
      const y = labels[r];
      lossSum += max + Math.log(sum) - logits[o + y];
      if (arg === y) correct++;
      if (dlogits) for (let j = 0; j < n; j++) dlogits[o + j] = (Math.exp(logits[o + j] - max) / sum - (j === y ? 1 : 0)) / rows;
    }
    return { lossSum, correct };
  }

  /** Forward and backward on one batch; fills `grads` (same layout as params). */
  lossAndGrads(params: Float32Array[], x: Float32Array, labels: Uint8Array, rows: number, grads: Float32Array[]): LossStats {
    const logits = this.forward(params, x, rows);
    const L = this.layers;
    const stats = this.crossEntropy(logits, labels, rows, this.deltas[L - 1]);
    for (let l = L - 1; l >= 0; l--) {
      const [fanIn, fanOut] = [this.sizes[l], this.sizes[l + 1]];
      const input = l === 0 ? x : this.acts[l - 1];
      const d = this.deltas[l];
      const gw = grads[2 * l];
      const gb = grads[2 * l + 1];
      gw.fill(0);
      gb.fill(0);
      for (let r = 0; r < rows; r++) {
        for (let j = 0; j < fanOut; j++) gb[j] += d[r * fanOut + j];
        for (let i = 0; i < fanIn; i++) {
          const a = input[r * fanIn + i];
          if (a === 0) continue;
          const go = i * fanOut;
          for (let j = 0; j < fanOut; j++) gw[go + j] += a * d[r * fanOut + j];
        }
      }
      if (l > 0) {
        // d_{l-1} = (d_l · W_lᵀ) masked by the ReLU of layer l-1
        const w = params[2 * l];
        const prev = this.deltas[l - 1];
        for (let r = 0; r < rows; r++) {
          for (let i = 0; i < fanIn; i++) {
            if (input[r * fanIn + i] <= 0) {
              prev[r * fanIn + i] = 0;
              continue;
            }
            let s = 0;
            for (let j = 0; j < fanOut; j++) s += d[r * fanOut + j] * w[i * fanOut + j];
            prev[r * fanIn + i] = s;
          }
        }
      }
    }
    return stats;
  }

  /** Mean loss and accuracy (%) over `count` images, in chunks of maxRows. */
  evaluate(params: Float32Array[], images: (start: number, rows: number) => { x: Float32Array; labels: Uint8Array }, count: number): { loss: number; accuracy: number } {
    let lossSum = 0;
    let correct = 0;
    for (let s = 0; s < count; s += this.maxRows) {
      const rows = Math.min(this.maxRows, count - s);
      const { x, labels } = images(s, rows);
      const st = this.crossEntropy(this.forward(params, x, rows), labels, rows, null);
      lossSum += st.lossSum;
      correct += st.correct;
    }
    return { loss: lossSum / count, accuracy: (100 * correct) / count };
  }
}
