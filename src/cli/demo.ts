import type { Command } from 'commander';

/** `bitopt demo`: trains real models with 8-bit and 32-bit optimizers (issue 6 builds it out). */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('train models side by side (not yet implemented)')
    .action(() => {
      throw new Error('bitopt demo is not implemented yet');
    });
}
