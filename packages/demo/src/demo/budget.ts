/**
 * "A bigger model in the same memory": for a fixed budget, the largest model whose training
 * memory fits with 32-bit Adam and with 8-bit Adam, counted tensor by tensor.
 *
 * Training memory per tensor of n elements = weights 4n + gradients 4n + optimizer state.
 * 32-bit Adam: 8n. 8-bit Adam (block-wise, blockSize 256): two 1-byte codes per element plus
 * one float32 absmax per block per state = 2n + 8·ceil(n/256) ≈ 2.03n; tensors under
 * min8bitSize (4096) and StableEmbedding's weights keep 8n, exactly as the optimizer does.
 * Activations are left out: they depend on batch and sequence length, not on the optimizer.
 */
import { transformerShapes, type TransformerConfig } from './models/transformer.js';

/**
 * The budget: 4 GiB, the most a WebAssembly (wasm32) memory can hold. TensorFlow.js's wasm
 * backend keeps every tensor in one such memory, so in a browser or Node it is a hard ceiling
 * on what one process can train on the CPU, whatever the machine has.
 */
export const BUDGET_BYTES = 4 * 1024 ** 3;
export const BUDGET_REASON =
  '4 GiB: the maximum size of a WebAssembly (wasm32) memory. The TensorFlow.js wasm backend keeps all tensors in one such memory, so it bounds what a browser tab or Node process can train on the CPU, whatever RAM the machine has.';

export const BLOCK_SIZE = 256;
export const MIN_8BIT_SIZE = 4096;

export interface TensorSpec {
  shape: number[];
  fullPrecision?: boolean;
}

export function trainingBytes(tensors: TensorSpec[], bits: 8 | 32): { params: number; weights: number; grads: number; state: number; total: number } {
  let params = 0;
  let state = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    params += n;
    const eightBit = bits === 8 && !t.fullPrecision && n >= MIN_8BIT_SIZE;
    state += eightBit ? 2 * (n + 4 * Math.ceil(n / BLOCK_SIZE)) : 8 * n;
  }
  return { params, weights: 4 * params, grads: 4 * params, state, total: 8 * params + state };
}

export interface BudgetFit {
  bits: 8 | 32;
  config: TransformerConfig;
  params: number;
  bytes: ReturnType<typeof trainingBytes>;
}

/**
 * The largest model of the demo's transformer family (character vocabulary, context 64,
 * width = 64 × depth, as in GPT-2's shapes) whose training memory fits `budget`.
 */
export function largestTransformer(budget: number, bits: 8 | 32, vocab = 48): BudgetFit {
  let best: BudgetFit | undefined;
  for (let layers = 1; layers <= 64; layers++) {
    const config: TransformerConfig = { vocab, context: 64, dModel: 64 * layers, heads: layers, layers };
    const bytes = trainingBytes(transformerShapes(config), bits);
    if (bytes.total > budget) break;
    best = { bits, config, params: bytes.params, bytes };
  }
  if (!best) throw new Error(`no model of the family fits ${budget} bytes`);
  return best;
}

export interface BudgetReport {
  budgetBytes: number;
  reason: string;
  /** Upper bound for any model of large tensors: budget / bytes per parameter. */
  bytesPerParam: { bits32: number; bits8: number };
  maxParams: { bits32: number; bits8: number };
  transformer: { bits32: BudgetFit; bits8: BudgetFit };
}

export function budgetReport(budget = BUDGET_BYTES, vocab = 48): BudgetReport {
  const per8 = 8 + 2 + 8 / BLOCK_SIZE;
  return {
    budgetBytes: budget,
    reason: budget === BUDGET_BYTES ? BUDGET_REASON : `${budget} bytes`,
    bytesPerParam: { bits32: 16, bits8: per8 },
    maxParams: { bits32: Math.floor(budget / 16), bits8: Math.floor(budget / per8) },
    transformer: { bits32: largestTransformer(budget, 32, vocab), bits8: largestTransformer(budget, 8, vocab) },
  };
}
