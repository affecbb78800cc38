/**
 * A one-line progress bar on stderr: steps, rate, ETA and the latest losses. Silent when stderr is
 * not a terminal or when asked to be quiet.
 */

/** Options of a {@link ProgressBar}. */
export interface ProgressBarOptions {
  total: number;
  label: string;
  quiet: boolean;
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  return `${m}m${String(Math.round(seconds - 60 * m)).padStart(2, "0")}s`;
}

/** Redraws one stderr line with `\r`; `finish()` ends the line. */
export class ProgressBar {
  readonly #options: ProgressBarOptions;
  readonly #start = performance.now();
  readonly #enabled: boolean;
  #drawn = false;

  constructor(options: ProgressBarOptions) {
    this.#options = options;
    let tty = false;
    try {
      tty = Deno.stderr.isTerminal();
    } catch {
      tty = false;
    }
    this.#enabled = tty && !options.quiet;
  }

  /** Shows `step` of the total and the latest loss of each model (at most four shown). */
  update(step: number, losses: readonly number[]): void {
    if (!this.#enabled) return;
    const { total, label } = this.#options;
    const elapsed = (performance.now() - this.#start) / 1000;
    const rate = step / Math.max(elapsed, 1e-9);
    const eta = (total - step) / rate;
    const width = 20;
    const filled = Math.round((width * step) / total);
    const bar = "█".repeat(filled) + "░".repeat(width - filled);
    const shown = losses.slice(0, 4).map((l) => l.toPrecision(3)).join(" ");
    const more = losses.length > 4 ? ` …(+${losses.length - 4})` : "";
    const line = `${label} ${bar} ${step}/${total} ${rate.toFixed(0)} steps/s ` +
      `ETA ${duration(eta)}${losses.length > 0 ? ` loss ${shown}${more}` : ""}`;
    const columns = (() => {
      try {
        return Deno.consoleSize().columns;
      } catch {
        return 120;
      }
    })();
    Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[2K${line.slice(0, columns - 1)}`));
    this.#drawn = true;
  }

  /** Ends the progress line. */
  finish(): void {
    if (this.#drawn) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
    this.#drawn = false;
  }
}
