import {
  FencedError,
  TransientTransactionError,
  TxkitError,
  UnknownCommitResultError,
  classifyKnown,
} from '../../core/index.js';
import type { Classification, NativeErrorCode } from '../../core/index.js';

/**
 * How txkit judges a Kafka error. `transient`: the transaction is aborted (on a
 * fresh producer epoch) and the unit may run again. `fenced`: another producer
 * owns the transactional.id; fatal. `fatal`: rerunning cannot help.
 */
export type KafkaErrorKind = 'transient' | 'fenced' | 'fatal';

/** One row of {@link KAFKA_ERROR_TABLE}: how txkit judges a Kafka protocol error, and why. */
export interface KafkaErrorRule {
  /** The Kafka protocol error code. */
  readonly code: number;
  /** How the error is judged. */
  readonly kind: KafkaErrorKind;
  /** Why, after the Java client's TransactionManager/Sender, which every Kafka client follows. */
  readonly reason: string;
}

/**
 * Kafka protocol errors a transactional producer meets, by the name kafkajs
 * gives them (`err.type`). Anything not listed is `fatal`: an unknown error is
 * never retried. Reasons cite the Java client (clients/.../TransactionManager.java,
 * Sender.java), whose choices txkit follows.
 */
export const KAFKA_ERROR_TABLE: Readonly<Record<string, KafkaErrorRule>> = Object.freeze({
  // --- the coordinator is busy or moved: Java retries the request ---
  CONCURRENT_TRANSACTIONS: {
    code: 51,
    kind: 'transient',
    reason:
      'the coordinator is still completing the previous transaction of this transactional.id (writing its markers); ' +
      'Java retries AddPartitions after 20 ms (KAFKA-5477), and the clients txkit configures from 1 or 2 ms inside send(), so what reaches ' +
      'txkit has outlasted those retries',
  },
  COORDINATOR_LOAD_IN_PROGRESS: {
    code: 14,
    kind: 'transient',
    reason: 'the transaction or group coordinator is loading its state after a leader change; Java retries',
  },
  COORDINATOR_NOT_AVAILABLE: {
    code: 15,
    kind: 'transient',
    reason: 'no coordinator right now (e.g. the __transaction_state partition has no leader); Java looks it up again and retries',
  },
  NOT_COORDINATOR: {
    code: 16,
    kind: 'transient',
    reason: 'the coordinator moved to another broker; Java looks it up again and retries',
  },
  // --- partition leadership and replication: retriable in Java's Sender ---
  UNKNOWN_TOPIC_OR_PARTITION: {
    code: 3,
    kind: 'transient',
    reason: 'metadata is stale or the topic is still being created; Java refreshes metadata and retries',
  },
  LEADER_NOT_AVAILABLE: { code: 5, kind: 'transient', reason: 'a leader election is in progress; Java retries' },
  NOT_LEADER_OR_FOLLOWER: {
    code: 6,
    kind: 'transient',
    reason: 'the partition leader moved; Java refreshes metadata and retries (kafkajs calls it NOT_LEADER_FOR_PARTITION)',
  },
  REQUEST_TIMED_OUT: {
    code: 7,
    kind: 'transient',
    reason: 'the broker timed out waiting for replication; Java retries (at EndTxn txkit reports an unknown commit instead)',
  },
  NETWORK_EXCEPTION: { code: 13, kind: 'transient', reason: 'the connection broke mid-request; Java retries' },
  NOT_ENOUGH_REPLICAS: { code: 19, kind: 'transient', reason: 'fewer in-sync replicas than min.insync.replicas; Java retries' },
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: {
    code: 20,
    kind: 'transient',
    reason: 'written but under-replicated; Java retries, and idempotence plus the abort keep it from becoming a duplicate',
  },
  KAFKA_STORAGE_ERROR: { code: 56, kind: 'transient', reason: 'a log directory failed and leadership moves; Java retries' },
  // --- the producer's sequence state is off: Java aborts and bumps the epoch (KIP-360) ---
  OUT_OF_ORDER_SEQUENCE_NUMBER: {
    code: 45,
    kind: 'transient',
    reason:
      'the broker lost track of this producer\'s sequence; Java makes the transaction abortable and bumps the epoch ' +
      '(KIP-360): txkit aborts and starts the next transaction on a new producer epoch',
  },
  UNKNOWN_PRODUCER_ID: {
    code: 59,
    kind: 'transient',
    reason: 'the broker expired this producer id\'s state; abortable in Java (KIP-360), txkit reruns on a new producer epoch',
  },
  INVALID_PRODUCER_ID_MAPPING: {
    code: 49,
    kind: 'transient',
    reason:
      'the producer id no longer maps to the transactional.id (transactional.id.expiration.ms passed); abortable in ' +
      'Java since KIP-360: a new InitProducerId fixes it',
  },
  TRANSACTION_ABORTABLE: {
    code: 120,
    kind: 'transient',
    reason: 'the broker asks the producer to abort the transaction (KIP-890); Java aborts, and the work can run again',
  },
  // --- zombie fencing: fatal for this producer ---
  PRODUCER_FENCED: {
    code: 90,
    kind: 'fenced',
    reason: 'another producer with the same transactional.id called InitProducerId with a newer epoch; Java: fatal ProducerFencedException',
  },
  INVALID_PRODUCER_EPOCH: {
    code: 47,
    kind: 'fenced',
    reason:
      'the producer\'s epoch is older than the coordinator\'s: a newer producer took over, or the coordinator aborted ' +
      'this transaction after transactionTimeout; Java: ProducerFencedException',
  },
  TRANSACTION_COORDINATOR_FENCED: {
    code: 52,
    kind: 'fatal',
    reason: 'a coordinator with an older epoch wrote markers; only brokers see this, a client cannot fix it',
  },
  // --- the offsets' group membership is stale (sendOffsets with a consumer's generation, KIP-447) ---
  ILLEGAL_GENERATION: {
    code: 22,
    kind: 'fatal',
    reason:
      'the offsets were sent with a group generation the group has left behind: the consumer\'s partitions moved in a ' +
      'rebalance (Java: CommitFailedException, the transaction must abort); rerunning cannot help until the consumer ' +
      'rejoins, and the new owner reads the records again',
  },
  UNKNOWN_MEMBER_ID: {
    code: 25,
    kind: 'fatal',
    reason: 'the coordinator no longer knows the consumer that sent the offsets (its session expired); Java: CommitFailedException',
  },
  FENCED_INSTANCE_ID: {
    code: 82,
    kind: 'fatal',
    reason: 'another consumer took over the static group.instance.id of the one that sent the offsets; Java: fatal for that consumer',
  },
  // --- misuse, configuration and permissions: rerunning cannot help ---
  INVALID_TXN_STATE: {
    code: 48,
    kind: 'fatal',
    reason: 'the request does not fit the transaction\'s state on the coordinator; Java: fatal KafkaException',
  },
  INVALID_TRANSACTION_TIMEOUT: {
    code: 50,
    kind: 'fatal',
    reason: 'transactionTimeout exceeds the broker\'s transaction.max.timeout.ms; fix the producer config',
  },
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: {
    code: 53,
    kind: 'fatal',
    reason: 'no ACL allows this principal to use the transactional.id; Java: fatal',
  },
  TOPIC_AUTHORIZATION_FAILED: { code: 29, kind: 'fatal', reason: 'no ACL allows writing the topic; fix the ACLs' },
  GROUP_AUTHORIZATION_FAILED: { code: 30, kind: 'fatal', reason: 'no ACL allows committing offsets of the group; fix the ACLs' },
  CLUSTER_AUTHORIZATION_FAILED: { code: 31, kind: 'fatal', reason: 'the principal may not use idempotent/transactional producing; fix the ACLs' },
  UNSUPPORTED_VERSION: { code: 35, kind: 'fatal', reason: 'the broker does not speak the request version the client sends' },
  UNSUPPORTED_FOR_MESSAGE_FORMAT: { code: 43, kind: 'fatal', reason: 'the topic\'s message format is too old for transactions' },
  MESSAGE_TOO_LARGE: { code: 10, kind: 'fatal', reason: 'a record exceeds max.message.bytes; sending it again fails the same way' },
  RECORD_LIST_TOO_LARGE: { code: 18, kind: 'fatal', reason: 'the batch exceeds the segment size; send fewer records per request' },
  INVALID_RECORD: { code: 87, kind: 'fatal', reason: 'the broker rejected a record (e.g. a compacted topic needs keys)' },
  INVALID_TOPIC_EXCEPTION: { code: 17, kind: 'fatal', reason: 'the topic name is invalid' },
  POLICY_VIOLATION: { code: 44, kind: 'fatal', reason: 'a broker policy rejected the request' },
});

/** kafkajs 2.x still uses the pre-2.x names of some codes; the table keys are Kafka's current names. */
const KAFKAJS_ALIASES: Readonly<Record<string, string>> = Object.freeze({
  GROUP_LOAD_IN_PROGRESS: 'COORDINATOR_LOAD_IN_PROGRESS',
  GROUP_COORDINATOR_NOT_AVAILABLE: 'COORDINATOR_NOT_AVAILABLE',
  NOT_COORDINATOR_FOR_GROUP: 'NOT_COORDINATOR',
  NOT_LEADER_FOR_PARTITION: 'NOT_LEADER_OR_FOLLOWER',
});

const BY_CODE: ReadonlyMap<number, [string, KafkaErrorRule]> = new Map(
  Object.entries(KAFKA_ERROR_TABLE).map(([name, rule]) => [rule.code, [name, rule]]),
);

/**
 * The table row of a protocol error: by its numeric code, else by name.
 * kafkajs 2.2 replaces codes it has no name for (PRODUCER_FENCED = 90,
 * TRANSACTION_ABORTABLE = 120) by code -99, type KAFKAJS_UNKNOWN_ERROR_CODE
 * and the message "Unknown error code 90": the code is read back from there.
 */
export function kafkaErrorRule(err: unknown): [string, KafkaErrorRule] | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { type, message } = err as { code?: unknown; type?: unknown; message?: unknown };
  let { code } = err as { code?: unknown };
  if (type === 'KAFKAJS_UNKNOWN_ERROR_CODE' && typeof message === 'string') {
    const m = /Unknown error code (-?\d+)/.exec(message);
    if (m !== null) code = Number(m[1]);
  }
  if (typeof code === 'number') {
    const row = BY_CODE.get(code);
    if (row !== undefined) return row;
  }
  if (typeof type === 'string') {
    const name = KAFKAJS_ALIASES[type] ?? type;
    const rule = KAFKA_ERROR_TABLE[name];
    if (rule !== undefined) return [name, rule];
  }
  return undefined;
}

/**
 * kafkajs errors without a protocol code: the request did not get an answer.
 * Outside EndTxn they are transient (the transaction is aborted on a new epoch
 * and rerun); during EndTxn they make the commit's outcome unknown.
 */
const NETWORK_ERROR_NAMES: ReadonlySet<string> = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSBrokerNotFound',
  // No broker answered the coordinator lookup (a broker restarting): nothing was sent to the coordinator.
  'KafkaJSGroupCoordinatorNotFound',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTopicMetadataNotLoaded',
  'KafkaJSStaleTopicMetadataAssignment',
  'KafkaJSLockTimeout',
]);

/** Error codes that leave an EndTxn's outcome unknown: the request may have been applied. */
const INDEFINITE_AT_END_TXN: ReadonlySet<string> = new Set(['REQUEST_TIMED_OUT', 'NETWORK_EXCEPTION']);

interface Diagnosis {
  kind: KafkaErrorKind | 'network';
  /** The protocol error name or the kafkajs error class that decided. */
  what: string;
  reason: string;
}

/** Walks the error and its causes (kafkajs wraps the last error of its retries) to what decides. */
export function diagnoseKafkaError(err: unknown): Diagnosis | undefined {
  let fallback: Diagnosis | undefined;
  let e: unknown = err;
  for (let depth = 0; depth < 8 && typeof e === 'object' && e !== null; depth++) {
    const { type, name } = e as { type?: unknown; name?: unknown };
    const rdkafka = diagnoseLibrdkafkaError(e) ?? diagnosePlatformaticError(e);
    if (rdkafka !== undefined) return rdkafka;
    const row = kafkaErrorRule(e);
    if (row !== undefined) return { kind: row[1].kind, what: row[0], reason: row[1].reason };
    if (typeof type === 'string') {
      fallback ??= { kind: 'fatal', what: type, reason: 'not in txkit\'s table of Kafka errors, so it is never retried' };
    } else if (typeof name === 'string' && NETWORK_ERROR_NAMES.has(name)) {
      fallback ??= { kind: 'network', what: name, reason: 'the request got no answer from the broker' };
    }
    e = (e as { cause?: unknown }).cause;
  }
  return fallback;
}

/** librdkafka's own error codes (negative) that decide; broker codes (positive) are the protocol's, as in the table. */
const RD_FENCED = -144; // ERR__FENCED
const RD_NO_REPLY: ReadonlySet<number> = new Set([-185 /* ERR__TIMED_OUT */, -195 /* ERR__TRANSPORT */, -187 /* ERR__ALL_BROKERS_DOWN */]);

/**
 * @confluentinc/kafka-javascript errors carry librdkafka's own verdict for
 * transactional producers (rd_kafka_error_is_fatal / txn_requires_abort /
 * is_retriable); txkit follows it. A retriable commit failure means the
 * commit may have been applied (librdkafka says: call commit again).
 */
function diagnoseLibrdkafkaError(e: object): Diagnosis | undefined {
  const { fatal, abortable, retriable, code, type } = e as { fatal?: unknown; abortable?: unknown; retriable?: unknown; code?: unknown; type?: unknown };
  if (typeof fatal !== 'boolean' || typeof abortable !== 'boolean' || typeof code !== 'number') return undefined;
  const what = typeof type === 'string' ? type : `librdkafka error ${code}`;
  const row = kafkaErrorRule(e);
  if (code === RD_FENCED || row?.[1].kind === 'fenced') {
    return { kind: 'fenced', what, reason: 'librdkafka reports this producer fenced by a newer one with the same transactional.id' };
  }
  if (fatal) return { kind: 'fatal', what, reason: 'librdkafka marks it fatal: the producer cannot be used any more' };
  if (abortable) return { kind: 'transient', what, reason: 'librdkafka says the transaction must be aborted; the work can run again' };
  if (RD_NO_REPLY.has(code) || retriable === true) {
    return { kind: 'network', what, reason: 'librdkafka marks it retriable: the request got no definite answer' };
  }
  if (row !== undefined) return { kind: row[1].kind, what: row[0], reason: row[1].reason };
  return { kind: 'fatal', what, reason: 'not in txkit\'s table of Kafka errors, so it is never retried' };
}

/** @platformatic/kafka error codes of a request that got no answer. */
const PLATFORMATIC_NO_REPLY: ReadonlySet<string> = new Set(['PLT_KFK_NETWORK', 'PLT_KFK_TIMEOUT', 'PLT_KFK_UNEXPECTED_CORRELATION_ID']);

/**
 * @platformatic/kafka errors: a `ProtocolError` carries the broker's code
 * (`apiCode`, judged by the table), network and timeout errors mean no
 * answer, and `MultipleErrors` / `ResponseError` hold the errors of a
 * request's retries or of a response's entries: a fencing among them
 * decides, else the last error the table knows, else no answer.
 */
function diagnosePlatformaticError(e: object): Diagnosis | undefined {
  const { code } = e as { code?: unknown };
  if (typeof code !== 'string' || !code.startsWith('PLT_KFK_')) return undefined;
  if (code === 'PLT_KFK_PROTOCOL') {
    const { apiCode, apiId } = e as { apiCode?: unknown; apiId?: unknown };
    const row = typeof apiCode === 'number' ? kafkaErrorRule({ code: apiCode }) : undefined;
    if (row !== undefined) return { kind: row[1].kind, what: row[0], reason: row[1].reason };
    return { kind: 'fatal', what: String(apiId ?? code), reason: 'not in txkit\'s table of Kafka errors, so it is never retried' };
  }
  if (PLATFORMATIC_NO_REPLY.has(code)) return { kind: 'network', what: code, reason: 'the request got no answer from the broker' };
  const { errors } = e as { errors?: unknown };
  if (Array.isArray(errors) && errors.length > 0) {
    const found = errors.map((inner) => diagnoseKafkaError(inner)).filter((d): d is Diagnosis => d !== undefined);
    const table = found.filter((d) => d.what in KAFKA_ERROR_TABLE);
    return found.find((d) => d.kind === 'fenced') ?? table.at(-1) ?? found.find((d) => d.kind === 'network') ?? found.at(-1);
  }
  const said = (e as { message?: unknown }).message;
  return { kind: 'fatal', what: code, reason: `@platformatic/kafka refused the call (${typeof said === 'string' ? said : 'not a broker error'})` };
}

/**
 * The adapter's `classify` for errors txkit did not translate (e.g. a native
 * error from the user's own kafkajs calls in the callback). Unknown: fatal.
 */
export function classifyKafkaError(err: unknown): Classification {
  const known = classifyKnown(err);
  if (known !== undefined) return known;
  const d = diagnoseKafkaError(err);
  if (d === undefined) return 'fatal';
  return d.kind === 'transient' || d.kind === 'network' ? 'transient' : 'fatal';
}

export type KafkaOperation = 'begin' | 'send' | 'sendBatch' | 'sendOffsets' | 'commit' | 'abort';

/**
 * Turns a kafkajs error from `operation` into the txkit error the caller
 * sees, with the native error as `cause`. Non-kafkajs errors pass through.
 */
export function translateKafkaError(err: unknown, operation: KafkaOperation, transactionalId: string): unknown {
  if (err instanceof TxkitError) return err;
  const d = diagnoseKafkaError(err);
  if (d === undefined) {
    if (!isKafkaJsError(err)) return err;
    return new TxkitError(
      'KAFKA_ERROR',
      `kafka ${operation}() failed for transactional.id '${transactionalId}': ${messageOf(err)}; txkit does not know ` +
        'this error, so it is not retried: see the cause',
      { backend: 'kafka', cause: err },
    );
  }
  const id = `transactional.id '${transactionalId}'`;
  if (d.kind === 'fenced') {
    return new FencedError(
      `kafka ${operation}() was refused with ${d.what}: ${d.reason}. This context is fenced and refuses further ` +
        `transactions; if another instance owns ${id}, stop this one, otherwise create a new context`,
      { backend: 'kafka', cause: err },
    );
  }
  if (operation === 'commit' && (d.kind === 'network' || INDEFINITE_AT_END_TXN.has(d.what))) {
    return new UnknownCommitResultError(
      `kafka commit (EndTxn) for ${id} got no definite answer (${d.what}): the transaction may or may not have ` +
        'committed. The next transaction starts on a rebuilt producer, whose InitProducerId lets the coordinator ' +
        'finish it; with transactionalConsumer, restarting from the committed offsets resolves it either way',
      { backend: 'kafka', cause: err, code: 'COMMIT_UNKNOWN' },
    );
  }
  if (d.kind === 'transient' || d.kind === 'network') {
    return new TransientTransactionError(
      `kafka ${operation}() failed with ${d.what} (${d.reason}); the transaction is aborted on a new producer epoch ` +
        'and the unit can run again',
      { backend: 'kafka', cause: err, code: d.what as NativeErrorCode },
    );
  }
  return new TxkitError(
    d.what as NativeErrorCode,
    `kafka ${operation}() failed with ${d.what} for ${id}: ${d.reason}; not retried`,
    { backend: 'kafka', cause: err },
  );
}

function isKafkaJsError(err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name;
  return typeof name === 'string' && name.startsWith('KafkaJS');
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
