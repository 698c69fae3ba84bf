import { ConfigError, FencedError, TxkitError } from '../core/index.js';
import { describeError } from '../core/options.js';

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
 * with this error's message as the reason, instead of being rerun
 * under the pipeline's `redelivery` policy. The pipeline also reports messages it rejects itself
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

/**
 * Reported to a pipeline's `onError` (or logger), not thrown: the handler
 * failed on a message with an ordinary error, and the pipeline reruns it
 * after `delayMs` while its partition waits. `cause` is the handler's error.
 */
export class MessageRetryError extends TxkitError {
  constructor(
    readonly consumer: string,
    readonly source: string,
    readonly partition: number,
    readonly offset: number,
    /** Runs so far, the failed one included. */
    readonly attempt: number,
    /** Wait before the next run. */
    readonly delayMs: number,
    /** Redelivery budget left before this wait. */
    readonly budgetLeftMs: number,
    cause: unknown,
  ) {
    super(
      'MESSAGE_RETRY',
      `consumer '${consumer}' failed on message ${offset} of '${source}' partition ${partition} (run ${attempt}): ${describeError(cause)}; ` +
        `the partition waits and reruns it in ${delayMs} ms (${budgetLeftMs} ms of redelivery budget left, then it goes to the dead letters); ` +
        'throw PoisonMessageError from the handler for a message that can never succeed',
      { cause },
    );
  }
}

/**
 * Reported to a pipeline's `onError` (or logger) when a message that kept
 * failing went to the dead letters because its redelivery budget (or
 * `maxAttempts`) was spent. `cause` is the last error, which is also the
 * dead letter's `error`.
 */
export class RedeliveryExhaustedError extends TxkitError {
  constructor(
    readonly consumer: string,
    readonly source: string,
    readonly partition: number,
    readonly offset: number,
    /** Runs the message had. */
    readonly attempts: number,
    /** Time from its first run to its last failure. */
    readonly spentMs: number,
    limit: string,
    cause: unknown,
  ) {
    super(
      'REDELIVERY_EXHAUSTED',
      `consumer '${consumer}' sent message ${offset} of '${source}' partition ${partition} to the dead letters after ${attempts} run${attempts === 1 ? '' : 's'} ` +
        `in ${spentMs} ms (${limit} spent); last error: ${describeError(cause)}; fix the cause and replay it from the dead letters, or raise the pipeline's redelivery.budgetMs`,
      { cause },
    );
  }
}


/** The header (Kafka) or property (Pulsar) that names the outbox a relay position was written for. */
export const POSITION_OUTBOX_HEADER = 'txkit-position-outbox';

/**
 * Refuses a relay position written for another outbox. Positions are kept
 * per relay id and partition in the broker, so two outboxes (two services,
 * or two table prefixes) relaying to one broker under the same relay id
 * would read each other's positions and skip records they never sent.
 * `written` is the outbox id stored with the position (undefined for a
 * position of an earlier version, which is trusted), `expected` the relay's
 * store's (undefined for a store without `outboxId`, which is not checked).
 * @throws ConfigError naming both outboxes and the fix.
 */
export function checkPositionOwner(where: string, at: { relayId: string; partition: number; outboxId?: string | undefined }, written: string | undefined): void {
  if (written === undefined || at.outboxId === undefined || written === at.outboxId) return;
  throw new ConfigError(
    `${where}: the position of relay id '${at.relayId}' in outbox partition ${at.partition} was written by the relay of another outbox ` +
      `(outbox id ${written}; this store's is ${at.outboxId}): two outboxes relay to this broker under one relay id, and each would skip records ` +
      `the other sent. Give each outbox its own relayId (txkit relay --relay-id), and with kafkaSink its own transactionalIdPrefix`,
  );
}
