/**
 * The Pulsar commands txkit speaks, as protobufjs types built from our own schema
 * (pulsar-api.proto -> pulsar-api-schema.ts), plus TypeScript shapes of the fields we
 * read. Field names are protobufjs' camelCase of the .proto names.
 */
import protobuf from 'protobufjs/light.js';
import { PULSAR_API_SCHEMA } from '../generated/pulsar-api-schema.js';

const root = protobuf.Root.fromJSON(PULSAR_API_SCHEMA);
const lookup = (name: string): protobuf.Type => root.lookupType(`pulsar.proto.${name}`);

export const BaseCommandCodec = lookup('BaseCommand');
export const MessageMetadataCodec = lookup('MessageMetadata');
export const SingleMessageMetadataCodec = lookup('SingleMessageMetadata');

/** BaseCommand.Type. */
export const CommandType = {
  CONNECT: 2,
  CONNECTED: 3,
  SUBSCRIBE: 4,
  PRODUCER: 5,
  SEND: 6,
  SEND_RECEIPT: 7,
  SEND_ERROR: 8,
  MESSAGE: 9,
  ACK: 10,
  FLOW: 11,
  SUCCESS: 13,
  ERROR: 14,
  CLOSE_PRODUCER: 15,
  CLOSE_CONSUMER: 16,
  PRODUCER_SUCCESS: 17,
  PING: 18,
  PONG: 19,
  REDELIVER_UNACKNOWLEDGED_MESSAGES: 20,
  PARTITIONED_METADATA: 21,
  PARTITIONED_METADATA_RESPONSE: 22,
  LOOKUP: 23,
  LOOKUP_RESPONSE: 24,
  REACHED_END_OF_TOPIC: 27,
  GET_LAST_MESSAGE_ID: 29,
  GET_LAST_MESSAGE_ID_RESPONSE: 30,
  ACTIVE_CONSUMER_CHANGE: 31,
  AUTH_CHALLENGE: 36,
  AUTH_RESPONSE: 37,
  ACK_RESPONSE: 38,
  NEW_TXN: 50,
  NEW_TXN_RESPONSE: 51,
  ADD_PARTITION_TO_TXN: 52,
  ADD_PARTITION_TO_TXN_RESPONSE: 53,
  ADD_SUBSCRIPTION_TO_TXN: 54,
  ADD_SUBSCRIPTION_TO_TXN_RESPONSE: 55,
  END_TXN: 56,
  END_TXN_RESPONSE: 57,
  TC_CLIENT_CONNECT_REQUEST: 62,
  TC_CLIENT_CONNECT_RESPONSE: 63,
  TOPIC_MIGRATED: 68,
} as const;

/** The BaseCommand field that carries each command type's body. */
export const COMMAND_FIELD: Readonly<Record<number, string>> = {
  [CommandType.CONNECT]: 'connect',
  [CommandType.CONNECTED]: 'connected',
  [CommandType.SUBSCRIBE]: 'subscribe',
  [CommandType.PRODUCER]: 'producer',
  [CommandType.SEND]: 'send',
  [CommandType.SEND_RECEIPT]: 'sendReceipt',
  [CommandType.SEND_ERROR]: 'sendError',
  [CommandType.MESSAGE]: 'message',
  [CommandType.ACK]: 'ack',
  [CommandType.FLOW]: 'flow',
  [CommandType.SUCCESS]: 'success',
  [CommandType.ERROR]: 'error',
  [CommandType.CLOSE_PRODUCER]: 'closeProducer',
  [CommandType.CLOSE_CONSUMER]: 'closeConsumer',
  [CommandType.PRODUCER_SUCCESS]: 'producerSuccess',
  [CommandType.PING]: 'ping',
  [CommandType.PONG]: 'pong',
  [CommandType.REDELIVER_UNACKNOWLEDGED_MESSAGES]: 'redeliverUnacknowledgedMessages',
  [CommandType.PARTITIONED_METADATA]: 'partitionMetadata',
  [CommandType.PARTITIONED_METADATA_RESPONSE]: 'partitionMetadataResponse',
  [CommandType.LOOKUP]: 'lookupTopic',
  [CommandType.LOOKUP_RESPONSE]: 'lookupTopicResponse',
  [CommandType.REACHED_END_OF_TOPIC]: 'reachedEndOfTopic',
  [CommandType.GET_LAST_MESSAGE_ID]: 'getLastMessageId',
  [CommandType.GET_LAST_MESSAGE_ID_RESPONSE]: 'getLastMessageIdResponse',
  [CommandType.ACTIVE_CONSUMER_CHANGE]: 'activeConsumerChange',
  [CommandType.AUTH_CHALLENGE]: 'authChallenge',
  [CommandType.AUTH_RESPONSE]: 'authResponse',
  [CommandType.ACK_RESPONSE]: 'ackResponse',
  [CommandType.NEW_TXN]: 'newTxn',
  [CommandType.NEW_TXN_RESPONSE]: 'newTxnResponse',
  [CommandType.ADD_PARTITION_TO_TXN]: 'addPartitionToTxn',
  [CommandType.ADD_PARTITION_TO_TXN_RESPONSE]: 'addPartitionToTxnResponse',
  [CommandType.ADD_SUBSCRIPTION_TO_TXN]: 'addSubscriptionToTxn',
  [CommandType.ADD_SUBSCRIPTION_TO_TXN_RESPONSE]: 'addSubscriptionToTxnResponse',
  [CommandType.END_TXN]: 'endTxn',
  [CommandType.END_TXN_RESPONSE]: 'endTxnResponse',
  [CommandType.TC_CLIENT_CONNECT_REQUEST]: 'tcClientConnectRequest',
  [CommandType.TC_CLIENT_CONNECT_RESPONSE]: 'tcClientConnectResponse',
};

/** Names for messages: `command type 57` -> `END_TXN_RESPONSE`. */
export function commandName(type: number): string {
  for (const [name, value] of Object.entries(CommandType)) if (value === type) return name;
  return `command type ${type}`;
}

/** Protocol version 19 added TC_CLIENT_CONNECT; everything txkit sends exists since then. */
export const PROTOCOL_VERSION = 19;

export const TxnAction = { COMMIT: 0, ABORT: 1 } as const;
export const LookupType = { Redirect: 0, Connect: 1, Failed: 2 } as const;
export const SubType = { Exclusive: 0, Shared: 1, Failover: 2, Key_Shared: 3 } as const;
export const InitialPosition = { Latest: 0, Earliest: 1 } as const;
export const CompressionType = { NONE: 0, LZ4: 1, ZLIB: 2, ZSTD: 3, SNAPPY: 4 } as const;

/** 64-bit integers as protobufjs decodes them (a Long when the `long` package is present). */
export type U64 = number | protobuf.Long;

export function toBigInt(v: U64 | undefined | null): bigint {
  if (v === undefined || v === null) return 0n;
  if (typeof v === 'number') return BigInt(v);
  const u = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
  return v.unsigned ? u : BigInt.asIntN(64, u);
}

/** As a JS number: exact for everything txkit keeps as numbers (ids and counters below 2^53). */
export function toNumber(v: U64 | undefined | null): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') return v;
  if (v.high === 0) return v.low >>> 0;
  return Number(toBigInt(v));
}

/** A bigint as protobufjs' encoder takes 64-bit values (it ignores bigint itself). */
export function fromBigInt(v: bigint): { low: number; high: number; unsigned: boolean } {
  const u = BigInt.asUintN(64, v);
  return { low: Number(u & 0xffffffffn) | 0, high: Number(u >> 32n) | 0, unsigned: true };
}

/** Whether a decoded message carries `field` on the wire (protobufjs keeps defaults on the prototype). */
export function has(obj: object | undefined, field: string): boolean {
  return obj !== undefined && Object.prototype.hasOwnProperty.call(obj, field);
}

// ---------------------------------------------------------------------------
// Shapes of the decoded fields txkit reads.

export interface KeyValue {
  key: string;
  value: string;
}

export interface MessageIdData {
  ledgerId: U64;
  entryId: U64;
  partition?: number;
  batchIndex?: number;
  ackSet?: U64[];
  batchSize?: number;
}

export interface MessageMetadata {
  producerName: string;
  sequenceId: U64;
  publishTime: U64;
  properties: KeyValue[];
  partitionKey?: string;
  compression?: number;
  uncompressedSize?: number;
  numMessagesInBatch?: number;
  eventTime?: U64;
  encryptionKeys: unknown[];
  partitionKeyB64Encoded?: boolean;
  orderingKey?: Uint8Array;
  markerType?: number;
  txnidLeastBits?: U64;
  txnidMostBits?: U64;
  nullValue?: boolean;
  numChunksFromMsg?: number;
  nullPartitionKey?: boolean;
}

export interface SingleMessageMetadata {
  properties: KeyValue[];
  partitionKey?: string;
  payloadSize: number;
  compactedOut?: boolean;
  eventTime?: U64;
  partitionKeyB64Encoded?: boolean;
  sequenceId?: U64;
  nullValue?: boolean;
  nullPartitionKey?: boolean;
}

/** The decoded BaseCommand: `type` plus the one body field its type names. */
export interface BaseCommand {
  type: number;
  [field: string]: unknown;
}

/** What every response body has. */
export interface ResponseBody {
  requestId?: U64;
  error?: number;
  message?: string;
}

export interface ConnectedBody {
  serverVersion: string;
  protocolVersion?: number;
  maxMessageSize?: number;
}

export interface LookupResponseBody extends ResponseBody {
  brokerServiceUrl?: string;
  brokerServiceUrlTls?: string;
  response?: number;
  authoritative?: boolean;
  proxyThroughServiceUrl?: boolean;
}

export interface PartitionMetadataResponseBody extends ResponseBody {
  partitions?: number;
  response?: number;
}

export interface ProducerSuccessBody extends ResponseBody {
  producerName: string;
  lastSequenceId?: U64;
  producerReady?: boolean;
}

export interface SendReceiptBody {
  producerId: U64;
  sequenceId: U64;
  messageId?: MessageIdData;
}

export interface SendErrorBody {
  producerId: U64;
  sequenceId: U64;
  error: number;
  message: string;
}

export interface MessageBody {
  consumerId: U64;
  messageId: MessageIdData;
  redeliveryCount?: number;
  ackSet?: U64[];
  consumerEpoch?: U64;
}

export interface LastMessageIdResponseBody extends ResponseBody {
  lastMessageId: MessageIdData;
}

export interface NewTxnResponseBody extends ResponseBody {
  txnidLeastBits?: U64;
  txnidMostBits?: U64;
}

export interface CloseBody {
  producerId?: U64;
  consumerId?: U64;
  requestId?: U64;
}
