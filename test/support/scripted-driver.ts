/**
 * A driver for testing the core itself: each begin takes the next scripted
 * behaviour, and "applied" records what a real backend would have made
 * durable. It stands in for no real backend; adapters are tested on theirs.
 */
import type { CommitOutcome, DriverTransaction, TransactionDriver } from '../../src/core/index.js';

export type CommitScript =
  | 'ok'
  | 'transient'
  | 'fatal'
  /** The commit was applied, then the connection dropped before the reply. */
  | 'unknown-applied'
  /** The connection dropped before the commit reached the server. */
  | 'unknown-lost';

export interface AttemptScript {
  begin?: 'ok' | 'transient';
  commit?: CommitScript;
  rollbackFails?: boolean;
}

export class DriverFault extends Error {
  constructor(
    readonly kind: 'transient' | 'fatal' | 'unknown',
    message: string,
  ) {
    super(message);
  }
}

export interface ScriptedDriverOptions {
  script: AttemptScript[];
  /** How an unknown commit can be settled: by asking the backend, by resending, or not at all. */
  settle: 'resolve' | 'recommit' | 'none';
}

export class ScriptedDriver implements TransactionDriver<{ write(effect: string): void }> {
  readonly backend = 'memory' as const;
  /** Effects made durable, in order. */
  readonly applied: string[] = [];
  readonly events: string[] = [];
  closed = 0;
  #next = 0;

  constructor(readonly options: ScriptedDriverOptions) {}

  async begin(): Promise<DriverTransaction<{ write(effect: string): void }>> {
    const step = this.options.script[this.#next++] ?? {};
    this.events.push('begin');
    if (step.begin === 'transient') throw new DriverFault('transient', 'begin failed');
    const pending: string[] = [];
    let settled: 'applied' | 'lost' | undefined;
    const { applied, events } = this;
    const tx: DriverTransaction<{ write(effect: string): void }> = {
      handle: { write: (e: string) => void pending.push(e) },
      async commit() {
        events.push('commit');
        switch (step.commit ?? 'ok') {
          case 'ok':
            applied.push(...pending);
            return;
          case 'transient':
            throw new DriverFault('transient', 'serialization failure at commit');
          case 'fatal':
            throw new DriverFault('fatal', 'constraint violated at commit');
          case 'unknown-applied':
            applied.push(...pending);
            settled = 'applied';
            throw new DriverFault('unknown', 'connection lost during commit');
          case 'unknown-lost':
            settled = 'lost';
            throw new DriverFault('unknown', 'connection lost during commit');
        }
      },
      async rollback() {
        events.push('rollback');
        if (step.rollbackFails) throw new DriverFault('fatal', 'rollback failed');
      },
    };
    if (this.options.settle === 'resolve') {
      tx.resolveCommit = async (): Promise<CommitOutcome> => (settled === 'applied' ? 'committed' : 'aborted');
    } else if (this.options.settle === 'recommit') {
      tx.recommit = async () => {
        events.push('recommit');
        if (settled === 'lost') applied.push(...pending);
        settled = 'applied';
      };
    }
    return tx;
  }

  classify(err: unknown): 'transient' | 'commit-unknown' | 'fatal' {
    if (!(err instanceof DriverFault)) return 'fatal';
    return err.kind === 'unknown' ? 'commit-unknown' : err.kind;
  }

  async close(): Promise<void> {
    this.closed += 1;
  }
}
