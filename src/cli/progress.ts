import type { CliIo } from './cli-config.js';

/** Options of {@link DrainProgress}. */
export interface DrainProgressOptions {
  /** Shortest time between two plain progress lines (not on a terminal). @default 5000 */
  lineEveryMs?: number;
  /** The clock. @default Date.now */
  now?: () => number;
}

/**
 * The progress of `txkit relay --drain` on standard error. On a terminal, a
 * bar redrawn in place with the time spent; otherwise plain lines: one at the
 * start, one when the count moved (at most one per `lineEveryMs`), one at the
 * end, never the same line twice in a row. `note()` prints a line of its own
 * (a retry, an error) without mixing it into the bar.
 */
export class DrainProgress {
  readonly #io: Pick<CliIo, 'err' | 'isTTY'>;
  readonly #total: number;
  readonly #every: number;
  readonly #now: () => number;
  readonly #started: number;
  #done = 0;
  /** The count the last plain line reported, and when. */
  #printed: { done: number; at: number } | undefined;
  #barShown = false;

  constructor(io: Pick<CliIo, 'err' | 'isTTY'>, total: number, options: DrainProgressOptions = {}) {
    this.#io = io;
    this.#total = total;
    this.#every = options.lineEveryMs ?? 5000;
    this.#now = options.now ?? Date.now;
    this.#started = this.#now();
    if (io.isTTY) this.#draw();
    else this.#line(`relaying ${total} pending record(s)`, 0);
  }

  /** Takes the count relayed so far; called periodically. */
  update(done: number): void {
    this.#done = done;
    if (this.#io.isTTY) {
      this.#draw();
      return;
    }
    const last = this.#printed;
    if (last !== undefined && (last.done === done || this.#now() - last.at < this.#every)) return;
    this.#line(this.#text(), done);
  }

  /** A line of its own, above the bar on a terminal. */
  note(line: string): void {
    if (this.#io.isTTY && this.#barShown) {
      this.#io.err(`\r\x1b[K${line}\n`);
      this.#draw();
    } else {
      this.#io.err(`${line}\n`);
    }
  }

  /** The last word: the final count, and the bar's line ended. */
  finish(done: number): void {
    this.#done = done;
    if (this.#io.isTTY) {
      this.#draw();
      this.#io.err('\n');
      this.#barShown = false;
    } else if (this.#printed?.done !== done) {
      this.#line(this.#text(), done);
    }
  }

  #text(): string {
    const ratio = this.#total === 0 ? 1 : Math.min(1, this.#done / this.#total);
    return `${this.#done}/${this.#total} relayed (${Math.round(ratio * 100)}%)`;
  }

  #draw(): void {
    const width = 30;
    const ratio = this.#total === 0 ? 1 : Math.min(1, this.#done / this.#total);
    const bar = '#'.repeat(Math.round(ratio * width)).padEnd(width, '.');
    const seconds = Math.floor((this.#now() - this.#started) / 1000);
    this.#io.err(`\r[${bar}] ${this.#text()}, ${seconds} s`);
    this.#barShown = true;
  }

  #line(text: string, done: number): void {
    this.#io.err(`${text}\n`);
    this.#printed = { done, at: this.#now() };
  }
}
