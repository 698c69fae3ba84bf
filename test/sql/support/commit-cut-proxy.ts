/**
 * A loopback TCP proxy in front of Postgres that breaks the connection
 * around a COMMIT, on request: the way a network failure makes a commit's
 * outcome unknown to the client. A preset of the general FaultProxy: the
 * rule matches a simple-query `COMMIT` (what pg and knex send).
 */
import { FaultProxy, postgresCommit } from '../../faults/support/fault-proxy.js';
import type { FaultRule } from '../../faults/support/fault-proxy.js';

/**
 * `after-forward`: COMMIT reaches the server, then both sides are closed
 * before the reply returns (the server commits; the client cannot know).
 * `before-forward`: both sides are closed and COMMIT is dropped (the server
 * rolls back when it sees the connection end; the client cannot know either).
 * `partition`: COMMIT is dropped and only the client side is closed: the
 * server keeps the session idle in transaction, as behind a network
 * partition it would until TCP keepalive gives up (hours by default).
 */
export type CutMode = 'after-forward' | 'before-forward' | 'partition';

export class CommitCutProxy {
  readonly #proxy: FaultProxy;
  #armed: { mode: CutMode; rule: FaultRule } | undefined;
  #cuts = 0;

  constructor(target: { host: string; port: number }) {
    this.#proxy = new FaultProxy({ target, framing: { toServer: 'postgres', toClient: 'raw' } });
  }

  /** Listens on 127.0.0.1 and returns the address to connect to. */
  start(): Promise<{ host: string; port: number }> {
    return this.#proxy.start();
  }

  /** The next COMMIT on any connection is cut this way; later ones pass. */
  arm(mode: CutMode): void {
    this.#settle();
    this.#armed?.rule.retire();
    const rule = this.#proxy.addRule({
      direction: 'to-server',
      match: postgresCommit,
      action: { kind: 'cut', forward: mode === 'after-forward', keepServer: mode === 'partition' },
    });
    this.#armed = { mode, rule };
  }

  get armed(): CutMode | undefined {
    this.#settle();
    return this.#armed?.mode;
  }

  /** How many COMMITs were cut so far. */
  get cuts(): number {
    this.#settle();
    return this.#cuts;
  }

  close(): Promise<void> {
    return this.#proxy.close();
  }

  /** A rule that has cut its COMMIT is no longer armed. */
  #settle(): void {
    if (this.#armed !== undefined && this.#armed.rule.hits > 0) {
      this.#cuts += 1;
      this.#armed = undefined;
    }
  }
}
