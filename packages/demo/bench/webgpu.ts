/**
 * WebGPU optimizer-step benchmark (the table in docs/benchmarks.md "## WebGPU").
 *   node --import tsx packages/demo/bench/webgpu.ts [--sizes 4,64,256] [--optimizers Adam8bit,Adam] [--iters 30]
 *        [--workgroups 1056,65535] [--unroll 1,2] [--pairs 0,1] [--exact 0,1] [--json out.json] [--swiftshader]
 * Sizes are in Mi parameters. --workgroups / --unroll / --pairs / --exact run the table once per engine setting.
 */
import { benchWebgpu, formatWebgpuTable } from '../src/cli/bench-webgpu.js';

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
process.env.XDG_RUNTIME_DIR ??= '/tmp';
const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
if (arg('swiftshader') !== undefined || process.argv.includes('--swiftshader')) process.env.VK_ICD_FILENAMES ??= SWIFTSHADER;
const list = (s: string | undefined) => s?.split(',').filter(Boolean);
const sizes = list(arg('sizes'))?.map((x) => Math.round(Number(x) * (1 << 20)));
const workgroups = list(arg('workgroups'))?.map(Number) ?? [undefined];
const unrolls = list(arg('unroll'))?.map(Number) ?? [undefined];
const pairsList = list(arg('pairs'))?.map((x) => x === '1') ?? [undefined];
const exactList = list(arg('exact'))?.map((x) => x === '1') ?? [undefined];
for (const exactEncode of exactList) for (const pairs of pairsList) for (const unroll of unrolls) for (const maxWorkgroups of workgroups) {
  const r = await benchWebgpu({
    sizes,
    optimizers: list(arg('optimizers')),
    iters: arg('iters') ? Number(arg('iters')) : undefined,
    json: arg('json') && workgroups.length === 1 && unrolls.length === 1 && pairsList.length === 1 && exactList.length === 1 ? arg('json') : undefined,
    maxWorkgroups,
    unroll,
    pairs,
    exactEncode,
    log: (l) => console.log(`[${(performance.now() / 1000).toFixed(1)}s] ${l}`),
  });
  console.log(`\nadapter: ${r.adapter}; timing: ${r.timing}; maxWorkgroups: ${maxWorkgroups ?? 'default'}; unroll: ${unroll ?? 'default'}; pairs: ${pairs ?? 'default'}; exactEncode: ${exactEncode ?? 'default'}`);
  console.log(formatWebgpuTable(r));
}
