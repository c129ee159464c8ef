#!/usr/bin/env node
/** The `bitopt` command. Each sub-command lives in its own module and registers itself here. */
import { Command } from 'commander';
import { registerBench } from './bench.js';
import { registerAblation, registerDemo } from './demo.js';

const program = new Command('bitopt').description('8-bit optimizers for TypeScript: benchmarks and demos');
registerBench(program);
registerDemo(program);
registerAblation(program);
await program.parseAsync(process.argv);
