import cliProgress from 'cli-progress';
import type { Io } from './main.js';

export interface Progress {
  update(done: number, total: number): void;
  finish(): void;
}

/** A progress bar on a terminal (cli-progress), or a line every ten per cent elsewhere (CI logs). */
export function progressBar(io: Io, label: string): Progress {
  if (io.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {percentage}% | {value}/{total}`,
        stream: process.stderr,
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(done, total) {
        if (!started) {
          bar.start(total, done);
          started = true;
        } else bar.update(done);
      },
      finish: () => started && bar.stop(),
    };
  }
  let lastDecile = -1;
  return {
    update(done, total) {
      const decile = total === 0 ? 10 : Math.floor((done / total) * 10);
      if (decile > lastDecile) {
        lastDecile = decile;
        io.err(`${label}: ${done}/${total} (${decile * 10}%)\n`);
      }
    },
    finish() {},
  };
}
