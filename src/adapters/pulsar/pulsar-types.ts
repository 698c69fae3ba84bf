import type { MessageHandle, RecordMetadata, SendBatchRequest, SendRequest } from '../../core/index.js';
import type { AckTarget, PulsarConsumer } from '../../pulsar-client/consumer.js';
import type { PulsarMessageId } from '../../pulsar-client/message-id.js';

/** Begin options of a Pulsar transaction (per call, over the context's defaults). */
export interface PulsarBeginOptions {
  /**
   * Time after which the transaction coordinator aborts the transaction by itself, so
   * a client that died mid-transaction never holds its messages and acknowledgements
   * for long. Independent of `timeoutMs`, txkit's client-side limit.
   * @default the context's transactionTimeoutMs (60_000)
   */
  transactionTimeoutMs?: number;
}

/** One produced message's metadata: one entry per message sent, in order. */
export interface PulsarRecordMetadata extends RecordMetadata {
  /** The partition index, or -1 for a non-partitioned topic. */
  partition: number;
  /** Where the broker stored the message (visible to consumers only once the transaction commits). */
  messageId: PulsarMessageId;
}

/**
 * The handle of a Pulsar transaction: the shared message-handle shape plus
 * acknowledge. Everything sent and acknowledged through it commits or aborts together.
 */
export interface PulsarTxHandle extends MessageHandle {
  /** The transaction id, `(mostBits,leastBits)`. */
  readonly transactionId: string;
  /**
   * Produces in the transaction; resolves once the broker stored the messages (they
   * become visible to consumers when the transaction commits). Headers become Pulsar
   * message properties (strings).
   */
  send(request: SendRequest): Promise<PulsarRecordMetadata[]>;
  sendBatch(request: SendBatchRequest): Promise<PulsarRecordMetadata[]>;
  /**
   * Acknowledges received messages in the transaction: on commit they are gone from
   * the subscription, on abort the broker delivers them again. Resolves once the broker
   * recorded the pending acknowledgement.
   */
  acknowledge(consumer: PulsarConsumer, messageId: AckTarget): Promise<void>;
}
