/** Progress display: a cli-progress bar on a terminal, one line per finished run elsewhere. */
import cliProgress from 'cli-progress';

export interface Progress {
  startRun(label: string, steps: number): void;
  /** One step of the current run, or of the run `label` when several run at once. */
  step(step: number, loss: number, label?: string): void;
  endRun(summary: string): void;
  stop(): void;
}

export function createProgress(totalSteps: number, log: (line: string) => void, enabled = true): Progress {
  const tty = enabled && Boolean(process.stderr.isTTY);
  const bar = tty
    ? new cliProgress.SingleBar(
        { format: ' {bar} {percentage}% | ETA {eta_formatted} | {run} | step {step} | loss {loss}', hideCursor: true, clearOnComplete: true, etaBuffer: 200 },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let done = 0;
  let label = '';
  bar?.start(totalSteps, 0, { run: '', step: 0, loss: '-' });
  return {
    startRun(l) {
      label = l;
      bar?.update(done, { run: label, step: 0, loss: '-' });
    },
    step(step, loss, runLabel) {
      done++;
      if (runLabel !== undefined) label = runLabel;
      if (step % 5 === 0 || !Number.isFinite(loss)) bar?.update(done, { run: label, step, loss: loss.toFixed(3) });
    },
    endRun(summary) {
      if (bar) {
        bar.stop();
        log(summary);
        bar.start(totalSteps, done, { run: label, step: 0, loss: '-' });
      } else {
        log(summary);
      }
    },
    stop() {
      bar?.stop();
    },
  };
}
