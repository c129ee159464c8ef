/**
 * A child process that runs one capacity trial (./trial.ts) and exits: each trial gets a fresh
 * tfjs heap and a fresh bitopt kernel memory, so a trial that filled them cannot affect the next.
 */
import { runTrial, type TrialJob, type TrialResult } from './trial.js';

export type TrialMessage = { type: 'step'; step: number; loss: number } | { type: 'done'; result: TrialResult } | { type: 'error'; message: string };

const send = (m: TrialMessage) => new Promise<void>((resolve) => process.send!(m, () => resolve()));

process.once('message', (job: TrialJob) => {
  void (async () => {
    try {
      const result = await runTrial(job, (step, loss) => void send({ type: 'step', step, loss }));
      await send({ type: 'done', result });
    } catch (e) {
      await send({ type: 'error', message: (e as Error).stack ?? String(e) });
    }
    process.exit(0);
  })();
});
