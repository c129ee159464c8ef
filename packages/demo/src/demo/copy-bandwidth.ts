/**
 * The machine's memory copy bandwidth, printed beside every CPU figure: absolute times on shared
 * machines are noisy and the CPU model changes between sessions, so a step time is read against
 * what a plain copy achieves in the same run. Float32Array.set of `elements` float32 values,
 * counting the read and the write, in GB/s: the median of `reps` timed copies after one warm-up.
 */
export function cpuCopyBandwidthGBs(elements = 16 << 20, reps = 7): number {
  const src = new Float32Array(elements).fill(1);
  const dst = new Float32Array(elements);
  dst.set(src);
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    dst.set(src);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return (2 * src.byteLength) / (times[reps >> 1] * 1e6);
}
