/**
 * A small character-level transformer language model (GPT-style, pre-LayerNorm, causal).
 *
 * The token embedding is a StableEmbedding as in the paper (§3.3): Xavier-uniform init, a
 * layer norm on its output, and 32-bit optimizer state for its weights (listed in
 * `fullPrecision`; the training loop turns that into `overrideConfig(p, { optimBits: 32 })`).
 * The output projection reuses the embedding matrix (tied weights), as small LMs often do.
 */
import { normalInit, Rng, xavierUniform } from '../rng.js';
import { tf } from '../tf.js';
import { crossEntropy, VariableSet, type Batch, type Model } from './model.js';

export interface TransformerConfig {
  vocab: number;
  context: number;
  dModel: number;
  heads: number;
  layers: number;
  /** Hidden width of the feed-forward block (4 × dModel by default). */
  ffn?: number;
}

export function transformerShapes(c: TransformerConfig): { name: string; shape: number[]; fullPrecision?: boolean }[] {
  const d = c.dModel;
  const f = c.ffn ?? 4 * d;
  const shapes: { name: string; shape: number[]; fullPrecision?: boolean }[] = [
    { name: 'embedding/weight', shape: [c.vocab, d], fullPrecision: true },
    { name: 'embedding/norm/gamma', shape: [d] },
    { name: 'embedding/norm/beta', shape: [d] },
    { name: 'position', shape: [c.context, d] },
  ];
  for (let l = 0; l < c.layers; l++) {
    for (const n of ['ln1/gamma', 'ln1/beta']) shapes.push({ name: `block${l}/${n}`, shape: [d] });
    for (const n of ['wq', 'wk', 'wv', 'wo']) shapes.push({ name: `block${l}/${n}`, shape: [d, d] });
    for (const n of ['ln2/gamma', 'ln2/beta']) shapes.push({ name: `block${l}/${n}`, shape: [d] });
    shapes.push({ name: `block${l}/ffn/w1`, shape: [d, f] }, { name: `block${l}/ffn/b1`, shape: [f] });
    shapes.push({ name: `block${l}/ffn/w2`, shape: [f, d] }, { name: `block${l}/ffn/b2`, shape: [d] });
  }
  shapes.push({ name: 'final/norm/gamma', shape: [d] }, { name: 'final/norm/beta', shape: [d] });
  return shapes;
}

function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), gamma), beta);
}

export function createTransformer(seed: number, c: TransformerConfig): Model {
  const rng = new Rng(seed);
  const vars = new VariableSet();
  const v: Record<string, tf.Variable> = {};
  const fullPrecision = new Set<tf.Variable>();
  for (const s of transformerShapes(c)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    let init: Float32Array;
    if (s.name === 'embedding/weight') init = xavierUniform(rng, s.shape[0], s.shape[1]);
    else if (s.name.endsWith('gamma')) init = new Float32Array(n).fill(1);
    else if (s.name.endsWith('beta') || /\/b\d$/.test(s.name)) init = new Float32Array(n);
    else if (s.name === 'position') init = normalInit(rng, n, 0.02);
    else {
      // GPT-2 style: N(0, 0.02), residual projections scaled down by depth.
      const residual = s.name.endsWith('/wo') || s.name.endsWith('/w2');
      init = normalInit(rng, n, residual ? 0.02 / Math.sqrt(2 * c.layers) : 0.02);
    }
    v[s.name] = vars.add(s.name, init, s.shape);
    if (s.fullPrecision) fullPrecision.add(v[s.name]);
  }
  const T = c.context;
  const dh = c.dModel / c.heads;
  const maskValues = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) maskValues[i * T + j] = -1e9;
  const mask = tf.tensor2d(maskValues, [T, T]);

  const heads = (x: tf.Tensor, B: number, t: number) => tf.transpose(tf.reshape(x, [B, t, c.heads, dh]), [0, 2, 1, 3]);

  const logits = (x: tf.Tensor): tf.Tensor2D => {
    const [B, t] = x.shape as [number, number];
    // one-hot × matrix instead of gather: its gradient runs on every backend (wasm lacks
    // UnsortedSegmentSum, gather's gradient) and costs little for a character vocabulary.
    const emb = tf.matMul(tf.oneHot(tf.reshape(x, [-1]) as tf.Tensor1D, c.vocab), v['embedding/weight']);
    let h = layerNorm(emb, v['embedding/norm/gamma'], v['embedding/norm/beta']);
    h = tf.add(tf.reshape(h, [B, t, c.dModel]), tf.slice(v['position'], [0, 0], [t, c.dModel]));
    h = tf.reshape(h, [B * t, c.dModel]);
    const m = t === T ? mask : tf.slice(mask, [0, 0], [t, t]);
    for (let l = 0; l < c.layers; l++) {
      const p = (n: string) => v[`block${l}/${n}`];
      const a = layerNorm(h, p('ln1/gamma'), p('ln1/beta'));
      const q = heads(tf.matMul(a, p('wq')), B, t);
      const k = heads(tf.matMul(a, p('wk')), B, t);
      const val = heads(tf.matMul(a, p('wv')), B, t);
      const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)), m);
      const att = tf.matMul(tf.softmax(scores), val); // [B, H, t, dh]
      const merged = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [B * t, c.dModel]);
      h = tf.add(h, tf.matMul(merged, p('wo')));
      const f = layerNorm(h, p('ln2/gamma'), p('ln2/beta'));
      const hidden = tf.relu(tf.add(tf.matMul(f, p('ffn/w1')), p('ffn/b1')));
      h = tf.add(h, tf.add(tf.matMul(hidden, p('ffn/w2')), p('ffn/b2')));
    }
    h = layerNorm(h, v['final/norm/gamma'], v['final/norm/beta']);
    return tf.matMul(h, v['embedding/weight'], false, true) as tf.Tensor2D; // tied output layer
  };
  return {
    variables: vars.variables,
    names: vars.names,
    fullPrecision,
    logits,
    loss: (batch: Batch) => crossEntropy(logits(batch.x), tf.reshape(batch.y, [-1]) as tf.Tensor1D),
    dispose: () => {
      vars.dispose();
      mask.dispose();
    },
  };
}
