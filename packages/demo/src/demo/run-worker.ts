/**
 * A child process of `bitopt demo --jobs N`: it trains the runs its parent sends, one at a time,
 * and sends back each step's loss and the run's result. Same code path as a serial run
 * (`trainRun`), so a run's numbers do not depend on where it ran.
 */
import { demoOptimizerFactory } from './adapter.js';
import type { OptimizerFactory } from './optimizers.js';
import type { ParentMessage, WorkerMessage } from './parallel.js';
import { createTask, type Task } from './tasks.js';
import { initTf } from './backend.js';
import { trainRun } from './train.js';

const send = (m: WorkerMessage) => process.send!(m);
const tasks = new Map<string, Task>();
let factory: Promise<OptimizerFactory> | undefined;

async function setUp(m: Extract<ParentMessage, { type: 'run' }>): Promise<OptimizerFactory> {
  await initTf(m.setup.tfBackend);
  return demoOptimizerFactory(m.setup.via);
}

process.on('message', (m: ParentMessage) => {
  if (m.type === 'exit') process.exit(0);
  void (async () => {
    try {
      factory ??= setUp(m);
      const f = await factory;
      const key = `${m.job.taskId}:${m.setup.lmSize ?? ''}`;
      if (!tasks.has(key)) tasks.set(key, createTask(m.job.taskId, { lmSize: m.setup.lmSize }));
      const result = await trainRun(tasks.get(key)!, m.job.spec, f, {
        steps: m.job.steps,
        seed: m.job.seed,
        onStep: (step, loss) => send({ type: 'step', index: m.job.index, step, loss }),
      });
      send({ type: 'done', index: m.job.index, result });
    } catch (e) {
      send({ type: 'error', index: m.job.index, message: (e as Error).stack ?? String(e) });
    }
  })();
});
