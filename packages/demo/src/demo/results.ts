/** The JSON the demo and the ablation write next to the report, and read back to render it. */
import type { BudgetReport } from './budget.js';
import type { RunResult } from './train.js';

export interface Environment {
  createdAt: string;
  command: string;
  machine: string;
  node: string;
  tfBackend: string;
  /** Where the models and bitopt ran: 'webgpu' (a GPU) or 'cpu' (absent in older results). */
  backend?: 'cpu' | 'webgpu';
  /** The WebGPU adapter, when backend is 'webgpu': device, then driver (e.g. 'nvidia-h100-80gb-hbm3 (NVIDIA: 580.159.04 580.159.4.0)'). */
  gpu?: string;
}

export interface TaskInfo {
  id: string;
  title: string;
  description: string;
  dataSource: string;
  lossLabel: string;
  steps: number;
}

export interface DemoResults {
  format: 'bitopt-demo-results';
  env: Environment;
  seeds: number[];
  tasks: TaskInfo[];
  runs: RunResult[];
  /** Set when the bitopt TensorFlow.js adapter was used for the bitopt runs. */
  adapter?: string;
}

export interface QuantErrorRow {
  state: 'm (signed)' | 'v (unsigned)';
  step: number;
  variant: string;
  elements: number;
  /** ||x − q(x)|| / ||x||. */
  relL2: number;
  /** Mean |x − q(x)| / |x| over non-zero elements. */
  meanRel: number;
  /** Share of non-zero elements that quantize to exactly 0. */
  zeroed: number;
}

export interface AblationResults {
  format: 'bitopt-ablation-results';
  env: Environment;
  task: TaskInfo;
  seeds: number[];
  /** Quantization error of the states captured from a 32-bit Adam run. */
  quantError: QuantErrorRow[];
  /** Final loss per training variant and seed. */
  stability: { variant: string; description: string; finalLoss: number[]; diverged: number; curve: number[] }[];
}

export interface ReportData {
  demo?: DemoResults;
  ablation?: AblationResults;
  /** `bitopt demo --task capacity` (written to capacity-results.json). */
  capacity?: import('./capacity/run-capacity.js').CapacityResults;
  budget: BudgetReport;
}
