export type { CpuKernel, DirectionNorms, UpdateJob } from '../optim/kernel.js';
