import { FencedError } from '../core/index.js';

/**
 * Another worker moved this consumer's position first: this worker is a
 * zombie for that partition and must stop processing it. Its transaction
 * rolled back, so none of its effects were committed.
 */
export class InboxFencedError extends FencedError {
  constructor(
    readonly consumer: string,
    readonly source: string,
    readonly partition: number,
    readonly expected: number | undefined,
  ) {
    super(
      `consumer '${consumer}' lost partition ${partition} of '${source}': its stored position is no longer ` +
        `${expected === undefined ? 'unset' : expected}, so another worker processed it; stop this worker or let it rejoin`,
    );
  }
}
