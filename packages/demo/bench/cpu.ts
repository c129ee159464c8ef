/**
 * CPU optimizer-step benchmark (the table in docs/benchmarks.md "## CPU"): the same as
 * `bitopt bench`, runnable from a checkout without building.
 *   node --import tsx packages/demo/bench/cpu.ts [--sizes 1M,4M,16M] [--optimizers adam,lion] [--bits 8,32]
 *        [--iterations 10] [--threads 2] [--no-tfjs] [--json out.json]
 */
import { Command } from 'commander';
import { registerBench } from '../src/cli/bench.js';

const program = new Command('bench-cpu');
registerBench(program);
await program.parseAsync(['node', 'bench-cpu', 'bench', ...process.argv.slice(2)]);
