/**
 * The options of a consumer and their checks, and the messages it hands out.
 */
import { PulsarConfigError } from './errors.js';
import { SubType } from './wire/commands.js';
import { PulsarMessageId } from './message-id.js';

/** Pulsar's subscription types: one consumer, round robin, one active consumer with failover, or by key. */
export type SubscriptionType = 'Exclusive' | 'Shared' | 'Failover' | 'Key_Shared';

/** Options of {@link PulsarClient.subscribe}. */
export interface ConsumerOptions {
  /** Topic name (`name`, `tenant/ns/name` or `persistent://tenant/ns/name`); partitioned or not. */
  topic: string;
  /** Subscription name; created on first use. */
  subscription: string;
  /** How the subscription shares messages among its consumers. @default 'Exclusive' (as the Java client) */
  subscriptionType?: SubscriptionType;
  /** Where a new subscription starts reading. @default 'latest' */
  initialPosition?: 'latest' | 'earliest';
  /** Messages prefetched per partition. @default 1_000 */
  receiverQueueSize?: number;
  /** Consumer name, shown in the broker's stats. @default a name the broker generates */
  consumerName?: string;
  /**
   * false: a non-durable subscription (a reader). The broker keeps no position for it,
   * acknowledgements are not needed, and it reads from `startMessageId` (or
   * `initialPosition`) each time it (re)subscribes, so after a reconnect it delivers
   * again from there: drop what was already seen by message id.
   * @default true
   */
  durable?: boolean;
  /**
   * Where a non-durable subscription starts reading: the entry of this id and what
   * follows (earlier messages of a batched entry included; filter by id). A
   * PulsarMessageId, or the ledger and entry of one. Only with `durable: false` and a
   * non-partitioned topic or one partition's topic.
   * @default initialPosition
   */
  startMessageId?: PulsarMessageId | { readonly ledgerId: bigint; readonly entryId: bigint };
}

/** A received message. */
export interface PulsarMessage {
  /** The topic it was read from (for a partitioned topic, the partition's topic). */
  readonly topic: string;
  readonly messageId: PulsarMessageId;
  /** The partition key: a string, or a Buffer for a binary key. */
  readonly key: string | Buffer | null;
  readonly value: Buffer | null;
  readonly properties: Readonly<Record<string, string>>;
  /** Epoch milliseconds when the broker received it. */
  readonly publishTime: number;
  /** Application event time (epoch milliseconds), when the producer set one. */
  readonly eventTime: number | undefined;
  readonly producerName: string;
  readonly sequenceId: bigint;
  /** How many times the broker delivered it before. */
  readonly redeliveryCount: number;
}

/** Options of {@link PulsarConsumer.receive}. */
export interface ReceiveOptions {
  /** Stops waiting (rejects with the signal's reason). @default none */
  signal?: AbortSignal;
  /** Rejects with PulsarTimeoutError when no message arrives in time. @default no limit */
  timeoutMs?: number;
}

/** The options with their defaults applied. @internal */
export interface ResolvedConsumerOptions {
  subscription: string;
  subscriptionType: SubscriptionType;
  initialPosition: 'latest' | 'earliest';
  receiverQueueSize: number;
  consumerName: string | undefined;
  durable: boolean;
  startMessageId: { readonly ledgerId: bigint; readonly entryId: bigint; readonly batchIndex: number } | undefined;
}

/** Checks the options and applies their defaults. @internal */
export function resolveConsumerOptions(options: ConsumerOptions): ResolvedConsumerOptions {
  const fail = (message: string): never => {
    throw new PulsarConfigError(message);
  };
  if (typeof options.subscription !== 'string' || options.subscription === '') fail('subscribe() needs a non-empty subscription name');
  const subscriptionType = options.subscriptionType ?? 'Exclusive';
  if (!(subscriptionType in SubType)) fail(`subscriptionType must be one of ${Object.keys(SubType).join(', ')}, got ${String(subscriptionType)}`);
  const initialPosition = options.initialPosition ?? 'latest';
  if (initialPosition !== 'latest' && initialPosition !== 'earliest') fail(`initialPosition must be 'latest' or 'earliest', got ${String(initialPosition)}`);
  const receiverQueueSize = options.receiverQueueSize ?? 1_000;
  if (!Number.isInteger(receiverQueueSize) || receiverQueueSize < 1) fail(`receiverQueueSize must be a positive integer, got ${String(receiverQueueSize)}`);
  if (options.consumerName !== undefined && (typeof options.consumerName !== 'string' || options.consumerName === '')) {
    fail('consumerName must be a non-empty string');
  }
  const durable = options.durable ?? true;
  if (typeof durable !== 'boolean') fail(`durable must be a boolean, got ${String(durable)}`);
  const given = options.startMessageId;
  let startMessageId: ResolvedConsumerOptions['startMessageId'];
  if (given !== undefined) {
    if (typeof given !== 'object' || given === null || typeof given.ledgerId !== 'bigint' || typeof given.entryId !== 'bigint' || given.ledgerId < 0n || given.entryId < 0n) {
      fail('startMessageId must be a PulsarMessageId (message.messageId or PulsarMessageId.parse) or { ledgerId, entryId } as non-negative bigints');
    }
    if (durable) fail('startMessageId needs durable: false: a durable subscription resumes from its own stored position');
    startMessageId = { ledgerId: given.ledgerId, entryId: given.entryId, batchIndex: given instanceof PulsarMessageId ? given.batchIndex : -1 };
  }
  return {
    subscription: options.subscription,
    subscriptionType,
    initialPosition,
    receiverQueueSize,
    consumerName: options.consumerName,
    durable,
    startMessageId,
  };
}
