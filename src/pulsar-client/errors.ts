/**
 * The errors txkit's Pulsar client throws. They import nothing of txkit but
 * two dependency-free core modules (the brand and the list of codes): each one carries the process-wide error
 * brand of txkit (`Symbol.for('txkit.error.kinds')`, the names of its classes), with
 * `TxkitError` among the names, so `instanceof TxkitError` holds for them and
 * copies of the client (its ESM and CommonJS builds, two installed versions)
 * recognise each other's errors, as copies of txkit do.
 */

// src/core/error-brand.ts imports nothing: the brand is txkit's own, shared with the client.
import { brandError, hasErrorBrand } from '../core/error-brand.js';
// src/core/error-codes.ts imports nothing: the one list of the client's codes.
import { PulsarClientErrorCodes } from '../core/error-codes.js';

/**
 * Every `code` an error of the Pulsar client carries. The list lives in the core's
 * dependency-free `error-codes.ts`, so that txkit's `ErrorCodes` includes it
 * (the client's errors are also `instanceof TxkitError`) without a second copy.
 */
export { PulsarClientErrorCodes };

/** A code of the Pulsar client: one of the values of {@link PulsarClientErrorCodes}. */
export type PulsarClientErrorCode = (typeof PulsarClientErrorCodes)[keyof typeof PulsarClientErrorCodes];

/** Constructor options of {@link PulsarClientError}. */
export interface PulsarClientErrorOptions {
  /** The underlying error, kept untouched as `cause`. */
  cause?: unknown;
  /** Whether rerunning the whole unit (a new transaction) can succeed. @default false */
  retriable?: boolean;
}

/**
 * Base of every error the Pulsar client throws. `code` is the machine-readable
 * reason (`PULSAR_TIMEOUT`, `PULSAR_TRANSACTION_CONFLICT`, ...); `retriable` says
 * whether rerunning the whole unit can succeed. Also `instanceof TxkitError`,
 * with `backend` `'pulsar'`.
 */
export class PulsarClientError extends Error {
  /**
   * The txkit error class a client error class stands for, added to the brand after its own name.
   * @internal
   */
  static readonly txkitKind: string = 'TxkitError';

  /** Recognises the client's errors by their registered brand, not by which copy of the client made them. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasErrorBrand(this, value);
  }

  /** Machine-readable reason, e.g. `PULSAR_TIMEOUT`, `CONFIG`: one of {@link PulsarClientErrorCodes}. */
  readonly code: PulsarClientErrorCode;
  /** Always `'pulsar'`. */
  readonly backend = 'pulsar' as const;
  /** True when rerunning the whole unit (a new transaction) can succeed. */
  readonly retriable: boolean;
  /** Set by txkit when aborting after this error also failed: the abort's error, kept so it never hides this one. */
  abortError: unknown = undefined;

  constructor(code: PulsarClientErrorCode, message: string, options: PulsarClientErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    brandError(this, new.target);
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}

/**
 * Invalid options or API misuse, detected before anything was sent (code `CONFIG`).
 * Also `instanceof ConfigError` of txkit.
 */
export class PulsarConfigError extends PulsarClientError {
  /** @internal */
  static override readonly txkitKind: string = 'ConfigError';

  constructor(message: string) {
    super('CONFIG', message);
  }
}

/**
 * How each server error code is judged: its `retriable` flag is the classification
 * txkit's Pulsar adapter passes on to the core, which reruns a unit only on
 * retriable errors.
 */
interface ServerErrorRule {
  readonly name: string;
  /** Rerunning the whole unit (a new transaction) can succeed. */
  readonly retriable: boolean;
  /** What the caller should do, for the error message. */
  readonly hint: string;
}

// Indexed by the ServerError enum value of PulsarApi.proto.
const SERVER_ERRORS = [
  { name: 'UnknownError', retriable: false, hint: 'see the broker log for the cause' },
  { name: 'MetadataError', retriable: true, hint: "the broker's metadata store failed; retrying may succeed" },
  { name: 'PersistenceError', retriable: true, hint: 'the broker could not write to BookKeeper; retrying may succeed' },
  { name: 'AuthenticationError', retriable: false, hint: 'the broker refused the credentials: give the client authentication (tokenAuthentication or oauth2Authentication) that the broker accepts, and check the token has not expired' },
  { name: 'AuthorizationError', retriable: false, hint: 'grant this client the permission the operation needs' },
  { name: 'ConsumerBusy', retriable: false, hint: "another consumer holds this Exclusive subscription: close it, or use subscriptionType 'Shared' or 'Failover'" },
  { name: 'ServiceNotReady', retriable: true, hint: 'the broker is starting or moving the topic; retrying after a back-off succeeds' },
  { name: 'ProducerBlockedQuotaExceededError', retriable: true, hint: 'the backlog quota is full: let consumers catch up or raise the quota' },
  { name: 'ProducerBlockedQuotaExceededException', retriable: true, hint: 'the backlog quota is full: let consumers catch up or raise the quota' },
  { name: 'ChecksumError', retriable: true, hint: 'the broker saw a corrupted payload; sending again is safe' },
  { name: 'UnsupportedVersionError', retriable: false, hint: 'the broker is too old for this command: use Pulsar 3.0 or newer' },
  { name: 'TopicNotFound', retriable: false, hint: 'create the topic, or enable allowAutoTopicCreation on the broker' },
  { name: 'SubscriptionNotFound', retriable: false, hint: 'create the subscription first, or allow auto subscription creation' },
  { name: 'ConsumerNotFound', retriable: true, hint: 'the consumer was reconnecting; retrying succeeds once it is back' },
  { name: 'TooManyRequests', retriable: true, hint: 'the broker throttles lookups or requests; back off and retry' },
  { name: 'TopicTerminatedError', retriable: false, hint: 'the topic was terminated and takes no more messages: use another topic' },
  { name: 'ProducerBusy', retriable: false, hint: 'a producer with this name is already connected: use a unique producerName' },
  { name: 'InvalidTopicName', retriable: false, hint: 'use a topic name like persistent://tenant/namespace/topic or a short name' },
  { name: 'IncompatibleSchema', retriable: false, hint: "the topic has a schema that rejects txkit's bytes schema" },
  { name: 'ConsumerAssignError', retriable: false, hint: 'the broker could not assign this consumer (e.g. Key_Shared ranges overlap)' },
  { name: 'TransactionCoordinatorNotFound', retriable: true, hint: 'the transaction coordinator is loading or moving; a new transaction after a back-off succeeds' },
  { name: 'InvalidTxnStatus', retriable: false, hint: 'the transaction already ended (committed, aborted or timed out): start a new one' },
  { name: 'NotAllowedError', retriable: false, hint: 'the broker refused the operation: check that transactions (transactionCoordinatorEnabled) are on' },
  { name: 'TransactionConflict', retriable: false, hint: 'another transaction already acknowledged this message; acknowledge each message in one transaction only' },
  { name: 'TransactionNotFound', retriable: false, hint: 'the coordinator no longer knows the transaction (it ended or timed out): raise transactionTimeoutMs or do less per transaction' },
  { name: 'ProducerFenced', retriable: false, hint: 'another producer took exclusive access to the topic: close this one' },
] as const satisfies readonly ServerErrorRule[];

/** The names of Pulsar's ServerError codes (PulsarApi.proto `enum ServerError`). */
export type PulsarServerErrorName = (typeof SERVER_ERRORS)[number]['name'];

/** Every server error name, indexed by its code. */
export const PULSAR_SERVER_ERROR_NAMES: readonly PulsarServerErrorName[] = SERVER_ERRORS.map((e) => e.name);

/** `TransactionConflict` -> `PULSAR_TRANSACTION_CONFLICT`, a registered code (a test checks every name). */
function codeOf(name: string): PulsarClientErrorCode {
  return `PULSAR_${name.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}` as PulsarClientErrorCode;
}

/**
 * The broker answered a request with an error. `serverError` names the ServerError
 * code; `code` is its txkit form (`PULSAR_TRANSACTION_CONFLICT`, ...), and `retriable`
 * says whether a new transaction can succeed.
 */
export class PulsarServerError extends PulsarClientError {
  readonly serverError: PulsarServerErrorName | 'Unrecognized';
  readonly serverErrorCode: number;
  /** The command the broker refused (`NEW_TXN`, `SEND`, ...). */
  readonly command: string;
  readonly brokerMessage: string;

  constructor(serverErrorCode: number, brokerMessage: string, command: string) {
    const rule: ServerErrorRule | undefined = SERVER_ERRORS[serverErrorCode];
    const name = rule?.name ?? 'Unrecognized';
    super(
      rule === undefined ? 'PULSAR_SERVER_ERROR' : codeOf(rule.name),
      `Pulsar broker refused ${command} with ${name}${rule === undefined ? ` (code ${serverErrorCode})` : ''}: ` +
        `${brokerMessage || '(no message)'}; ${rule?.hint ?? 'see the broker log for the cause'}`,
      { retriable: rule?.retriable ?? false },
    );
    this.serverError = name as PulsarServerErrorName | 'Unrecognized';
    this.serverErrorCode = serverErrorCode;
    this.command = command;
    this.brokerMessage = brokerMessage;
  }
}

/**
 * The peer sent bytes that are not the Pulsar protocol (bad frame size, undecodable
 * command, missing checksum magic...). The connection is closed; nothing is retried,
 * because a peer that sends garbage once will do so again.
 */
export class PulsarProtocolError extends PulsarClientError {
  /** The id of the message whose bytes were bad, when the frame was readable enough to tell. */
  readonly messageId: string | undefined;
  constructor(message: string, options: { code?: PulsarClientErrorCode; cause?: unknown; messageId?: string } = {}) {
    super(options.code ?? 'PULSAR_PROTOCOL', `Pulsar protocol error: ${message}`, { cause: options.cause });
    this.messageId = options.messageId;
  }
}

/**
 * A received message's CRC32C did not match its bytes. It is not delivered and stays
 * unacknowledged: acknowledge its `messageId` to skip it, or let it be redelivered.
 */
export class PulsarChecksumError extends PulsarProtocolError {
  constructor(message: string, messageId: string) {
    super(message, { code: 'PULSAR_CHECKSUM', messageId });
  }
}

/**
 * No connection, or it broke: refused, closed by the peer, keep-alive lost. In a
 * transaction nothing is half-applied (the transaction is aborted), so the unit can run again.
 */
export class PulsarConnectionError extends PulsarClientError {
  constructor(message: string, options: { cause?: unknown; code?: PulsarClientErrorCode } = {}) {
    super(options.code ?? 'PULSAR_CONNECTION', message, { retriable: true, cause: options.cause });
  }
}

/** A request got no answer within its timeout. Retriable: the transaction it belonged to is aborted. */
export class PulsarTimeoutError extends PulsarClientError {
  readonly timeoutMs: number;
  constructor(what: string, timeoutMs: number, message?: string) {
    super(
      'PULSAR_TIMEOUT',
      message ??
        `Pulsar ${what} got no answer within ${timeoutMs} ms; the broker may be overloaded or unreachable ` +
          '(raise operationTimeoutMs if it is just slow)',
      { retriable: true },
    );
    this.timeoutMs = timeoutMs;
  }
}

/** A message or feature txkit's client does not handle (LZ4/ZSTD/Snappy compression, encryption, chunking, auth). */
export class PulsarUnsupportedError extends PulsarClientError {
  /** The id of the message that could not be read, for skipping it with an acknowledgement. */
  readonly messageId: string | undefined;
  constructor(message: string, messageId?: string) {
    super('PULSAR_UNSUPPORTED', `Pulsar: ${message}`);
    this.messageId = messageId;
  }
}

/** The client, producer or consumer was closed while the operation waited. */
export class PulsarClosedError extends PulsarClientError {
  constructor(what: string) {
    super('PULSAR_CLOSED', `the Pulsar ${what} is closed; create a new one`);
  }
}

/** The broker has no transaction coordinator: transactions are off. */
export class PulsarTransactionsDisabledError extends PulsarClientError {
  constructor() {
    super(
      'PULSAR_TRANSACTIONS_DISABLED',
      'the Pulsar cluster has no transaction coordinator (persistent://pulsar/system/transaction_coordinator_assign ' +
        'has no partitions); set transactionCoordinatorEnabled=true on the brokers and initialise the coordinator ' +
        'metadata (pulsar initialize-transaction-coordinator-metadata)',
    );
  }
}
