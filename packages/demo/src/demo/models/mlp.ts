/** A small MLP digit classifier: 784 → 256 → 128 → 10 with ReLU (235k parameters). */
import { IMAGE_SIZE, NUM_CLASSES } from '../data/mnist.js';
import { Rng, xavierUniform } from '../rng.js';
import { tf } from '../tf.js';
import { crossEntropy, VariableSet, type Batch, type Model } from './model.js';

export function createMlp(seed: number, hidden: number[] = [256, 128]): Model {
  const rng = new Rng(seed);
  const vars = new VariableSet();
  const sizes = [IMAGE_SIZE, ...hidden, NUM_CLASSES];
  const layers: { w: tf.Variable; b: tf.Variable }[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    const [fanIn, fanOut] = [sizes[i], sizes[i + 1]];
    layers.push({
      w: vars.add(`dense${i}/kernel`, xavierUniform(rng, fanIn, fanOut), [fanIn, fanOut]),
      b: vars.add(`dense${i}/bias`, new Float32Array(fanOut), [fanOut]),
    });
  }
  const logits = (x: tf.Tensor): tf.Tensor2D => {
    let h = x as tf.Tensor2D;
    layers.forEach(({ w, b }, i) => {
      h = tf.add(tf.matMul(h, w), b);
      if (i + 1 < layers.length) h = tf.relu(h);
    });
    return h;
  };
  return {
    variables: vars.variables,
    names: vars.names,
    fullPrecision: new Set(),
    logits,
    loss: (batch: Batch) => crossEntropy(logits(batch.x), batch.y as tf.Tensor1D),
    dispose: () => vars.dispose(),
  };
}
