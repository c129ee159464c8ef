import type { Command } from 'commander';

/** `bitopt bench`: optimizer step throughput (issue 3 builds it out). */
export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('time optimizer steps (not yet implemented)')
    .action(() => {
      throw new Error('bitopt bench is not implemented yet');
    });
}
