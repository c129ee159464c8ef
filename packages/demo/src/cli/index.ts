#!/usr/bin/env node
/** The `bitopt` command. Each sub-command lives in its own module and registers itself here. */
import { Command } from 'commander';
import { registerBench } from './bench.js';
import { registerAblation, registerDemo } from './demo.js';
import { versionLine } from './version.js';

const program = new Command('bitopt').description('8-bit optimizers for TypeScript: benchmarks and demos').version(versionLine(), '-V, --version', 'print the versions of bitopt-demo and of the bitopt library it runs on');
registerBench(program);
registerDemo(program);
registerAblation(program);
await program.parseAsync(process.argv);
