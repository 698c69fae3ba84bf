/**
 * The lifecycle both transactional consumers (kafkajs and @platformatic/kafka)
 * share: their states, the `done` promise and the refusal of a second start.
 * @internal
 */
import { TransactionStateError } from '../../core/index.js';

/** The states of a transactional consumer, in the order it goes through them. */
export type ConsumerState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

/** A consumer's `done` promise and its settle functions; `done` is never an unhandled rejection. */
export function consumerDone(): { done: Promise<void>; settle: { resolve(): void; reject(err: unknown): void } } {
  let settle!: { resolve(): void; reject(err: unknown): void };
  const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  // Observed through `done` by whoever cares.
  done.catch(() => undefined);
  return { done, settle };
}

/** Throws TransactionStateError unless the consumer has not been started yet. */
export function assertStartable(state: ConsumerState): void {
  if (state !== 'new') {
    throw new TransactionStateError(`start() is not allowed: this transactional consumer is ${state}`, { backend: 'kafka', method: 'start', state });
  }
}

