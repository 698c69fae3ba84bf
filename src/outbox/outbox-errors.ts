import { FencedError, TxkitError } from '../core/index.js';

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

/**
 * A message that can never be processed: throw it from a pipeline's
 * `handler` or `decode` and the message goes to the dead letters at once,
 * with this error's message as the reason, instead of being retried
 * `maxAttempts` times. The pipeline also reports messages it rejects itself
 * (no key with `requireKey`, a value over `maxValueBytes`, a failed
 * `decode`) to `onError` as this error, with `reason` saying which check
 * failed.
 */
export class PoisonMessageError extends TxkitError {
  /** The reason stored with the dead letter, e.g. `decode: SyntaxError: ...`; set by the pipeline when it rejects a message. */
  readonly reason: string | undefined;

  constructor(message: string, options: { cause?: unknown; reason?: string } = {}) {
    super('POISON_MESSAGE', message, options.cause === undefined ? {} : { cause: options.cause });
    this.reason = options.reason;
  }
}
