/**
 * Every `code` an error of txkit's Pulsar client (`txkit/pulsar-client`) carries.
 * It lives here, in a module that imports nothing, so that the client (which
 * imports nothing of txkit but dependency-free core modules) and
 * {@link ErrorCodes} share one list.
 */
export const PulsarClientErrorCodes = {
  CONFIG: 'CONFIG',
  PULSAR_CONNECTION: 'PULSAR_CONNECTION',
  // Carried by a PulsarConnectionError of txkit's Pulsar adapter: an earlier transaction's abort is unanswered.
  PULSAR_EARLIER_TRANSACTION_OPEN: 'PULSAR_EARLIER_TRANSACTION_OPEN',
  PULSAR_TIMEOUT: 'PULSAR_TIMEOUT',
  PULSAR_CLOSED: 'PULSAR_CLOSED',
  PULSAR_PROTOCOL: 'PULSAR_PROTOCOL',
  PULSAR_CHECKSUM: 'PULSAR_CHECKSUM',
  PULSAR_UNSUPPORTED: 'PULSAR_UNSUPPORTED',
  PULSAR_TRANSACTIONS_DISABLED: 'PULSAR_TRANSACTIONS_DISABLED',
  PULSAR_SERVER_ERROR: 'PULSAR_SERVER_ERROR',
  // One per server error of the broker (PulsarServerError), in the order of PULSAR_SERVER_ERROR_NAMES.
  PULSAR_UNKNOWN_ERROR: 'PULSAR_UNKNOWN_ERROR',
  PULSAR_METADATA_ERROR: 'PULSAR_METADATA_ERROR',
  PULSAR_PERSISTENCE_ERROR: 'PULSAR_PERSISTENCE_ERROR',
  PULSAR_AUTHENTICATION_ERROR: 'PULSAR_AUTHENTICATION_ERROR',
  PULSAR_AUTHORIZATION_ERROR: 'PULSAR_AUTHORIZATION_ERROR',
  PULSAR_CONSUMER_BUSY: 'PULSAR_CONSUMER_BUSY',
  PULSAR_SERVICE_NOT_READY: 'PULSAR_SERVICE_NOT_READY',
  PULSAR_PRODUCER_BLOCKED_QUOTA_EXCEEDED_ERROR: 'PULSAR_PRODUCER_BLOCKED_QUOTA_EXCEEDED_ERROR',
  PULSAR_PRODUCER_BLOCKED_QUOTA_EXCEEDED_EXCEPTION: 'PULSAR_PRODUCER_BLOCKED_QUOTA_EXCEEDED_EXCEPTION',
  PULSAR_CHECKSUM_ERROR: 'PULSAR_CHECKSUM_ERROR',
  PULSAR_UNSUPPORTED_VERSION_ERROR: 'PULSAR_UNSUPPORTED_VERSION_ERROR',
  PULSAR_TOPIC_NOT_FOUND: 'PULSAR_TOPIC_NOT_FOUND',
  PULSAR_SUBSCRIPTION_NOT_FOUND: 'PULSAR_SUBSCRIPTION_NOT_FOUND',
  PULSAR_CONSUMER_NOT_FOUND: 'PULSAR_CONSUMER_NOT_FOUND',
  PULSAR_TOO_MANY_REQUESTS: 'PULSAR_TOO_MANY_REQUESTS',
  PULSAR_TOPIC_TERMINATED_ERROR: 'PULSAR_TOPIC_TERMINATED_ERROR',
  PULSAR_PRODUCER_BUSY: 'PULSAR_PRODUCER_BUSY',
  PULSAR_INVALID_TOPIC_NAME: 'PULSAR_INVALID_TOPIC_NAME',
  PULSAR_INCOMPATIBLE_SCHEMA: 'PULSAR_INCOMPATIBLE_SCHEMA',
  PULSAR_CONSUMER_ASSIGN_ERROR: 'PULSAR_CONSUMER_ASSIGN_ERROR',
  PULSAR_TRANSACTION_COORDINATOR_NOT_FOUND: 'PULSAR_TRANSACTION_COORDINATOR_NOT_FOUND',
  PULSAR_INVALID_TXN_STATUS: 'PULSAR_INVALID_TXN_STATUS',
  PULSAR_NOT_ALLOWED_ERROR: 'PULSAR_NOT_ALLOWED_ERROR',
  PULSAR_TRANSACTION_CONFLICT: 'PULSAR_TRANSACTION_CONFLICT',
  PULSAR_TRANSACTION_NOT_FOUND: 'PULSAR_TRANSACTION_NOT_FOUND',
  PULSAR_PRODUCER_FENCED: 'PULSAR_PRODUCER_FENCED',
} as const;

/**
 * Every `code` a txkit error carries, by name. Compare with these (`err.code ===
 * ErrorCodes.HANDLE_ENDED`) or with the string itself: both are checked by the
 * compiler. docs/errors-and-retries.md says what each one means and what to do.
 *
 * The Pulsar client's codes are listed in {@link PulsarClientErrorCodes}, which
 * `txkit/pulsar-client` exports as its own registry; its errors are also
 * `instanceof TxkitError`, so `ErrorCodes` includes them.
 */
export const ErrorCodes = {
  // The Pulsar client's, listed in PulsarClientErrorCodes above (CONFIG among them).
  ...PulsarClientErrorCodes,

  // The core: options, the retry loop, timeouts, propagation, hooks.
  CONFIG: 'CONFIG',
  TRANSIENT: 'TRANSIENT',
  COMMIT_UNKNOWN: 'COMMIT_UNKNOWN',
  COMMIT_ROLLED_BACK: 'COMMIT_ROLLED_BACK',
  RETRY_DEADLINE: 'RETRY_DEADLINE',
  TX_TIMEOUT: 'TX_TIMEOUT',
  ABORTED: 'ABORTED',
  PROPAGATION: 'PROPAGATION',
  FENCED: 'FENCED',
  HOOK_FAILED: 'HOOK_FAILED',

  // A method called in a state that forbids it (TransactionStateError).
  INVALID_STATE: 'INVALID_STATE',
  ROLLBACK_ONLY: 'ROLLBACK_ONLY',
  JOINED_COMMIT: 'JOINED_COMMIT',
  CONTEXT_CLOSED: 'CONTEXT_CLOSED',
  PENDING_WORK: 'PENDING_WORK',
  ABORTED_BY_HANDLE: 'ABORTED_BY_HANDLE',

  // Transaction handles: used after the end, or ending the transaction themselves.
  HANDLE_ENDED: 'HANDLE_ENDED',
  HANDLE_OWNS_END: 'HANDLE_OWNS_END',
  HANDLE_RELEASE: 'HANDLE_RELEASE',

  // Backends: SQL.
  ROLLED_BACK_ON_COMMIT: 'ROLLED_BACK_ON_COMMIT',
  ROLLBACK_TIMEOUT: 'ROLLBACK_TIMEOUT',
  ROLLBACK_UNANSWERED: 'ROLLBACK_UNANSWERED',
  KNEX_ENDED: 'KNEX_ENDED',
  // Backends: MongoDB.
  COMMIT_TIMEOUT: 'COMMIT_TIMEOUT',
  FOREIGN_SESSION: 'FOREIGN_SESSION',
  UNSUPPORTED_TOPOLOGY: 'UNSUPPORTED_TOPOLOGY',
  PARALLEL_USE: 'PARALLEL_USE',
  // Backends: Kafka (errors txkit does not know keep their native name, see NativeErrorCode).
  KAFKA_ERROR: 'KAFKA_ERROR',
  KAFKA_SEND_UNVERIFIED: 'KAFKA_SEND_UNVERIFIED',
  // Backends: Pulsar (txkit/pulsar).
  PULSAR_COMMIT_UNKNOWN: 'PULSAR_COMMIT_UNKNOWN',
  // Backends: memory.
  WRITE_CONFLICT: 'WRITE_CONFLICT',

  // The outbox relay, sources and sinks, and the pipeline.
  RELAY_POSITION_TAKEN: 'RELAY_POSITION_TAKEN',
  RELAY_POSITION_UNREADABLE: 'RELAY_POSITION_UNREADABLE',
  RELAY_POSITION_INVALID: 'RELAY_POSITION_INVALID',
  POSITIONS_READ_TIMEOUT: 'POSITIONS_READ_TIMEOUT',
  POSITIONS_CORRUPT: 'POSITIONS_CORRUPT',
  SOURCE_OFFSET_OUT_OF_RANGE: 'SOURCE_OFFSET_OUT_OF_RANGE',
  SOURCE_NOT_IN_GROUP: 'SOURCE_NOT_IN_GROUP',
  PULSAR_OFFSET_OVERFLOW: 'PULSAR_OFFSET_OVERFLOW',
  POISON_MESSAGE: 'POISON_MESSAGE',
  MESSAGE_RETRY: 'MESSAGE_RETRY',
  REDELIVERY_EXHAUSTED: 'REDELIVERY_EXHAUSTED',

  // Faults injected by txkit/testing (injectFaults).
  INJECTED_TRANSIENT: 'INJECTED_TRANSIENT',
  INJECTED_COMMIT_UNKNOWN: 'INJECTED_COMMIT_UNKNOWN',
  INJECTED_FATAL: 'INJECTED_FATAL',
} as const;

/** A code txkit registers: one of the values of {@link ErrorCodes}. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/**
 * A code that is not txkit's: a backend's own name for an error, which txkit
 * passes on as `code` when it keeps the backend's verdict. The Kafka adapter's
 * errors carry the Kafka error type (`CONCURRENT_TRANSACTIONS`, `NOT_COORDINATOR`,
 * ...) or the name of the kafkajs error class that decided. A custom driver's
 * errors, and your own subclasses of `TxkitError`, carry their own codes the same
 * way: `new TxkitError('ORDER_REJECTED' as NativeErrorCode, ...)`; the cast says
 * that the name is deliberately not one of {@link ErrorCodes}.
 */
export type NativeErrorCode = string & { readonly nativeErrorCode: true };
