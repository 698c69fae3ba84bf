export { TxState, canTransition, isTerminal, transition } from './tx-state.js';
export {
  AfterCommitHookError,
  ConfigError,
  FencedError,
  TransactionAbortedError,
  TransactionPropagationError,
  TransactionStateError,
  TransactionTimeoutError,
  TransientTransactionError,
  TxkitError,
  UnknownCommitResultError,
} from './errors.js';
export { classifyKnown } from './errors.js';
export { ErrorCodes } from './error-codes.js';
export type { ErrorCode, NativeErrorCode } from './error-codes.js';
export type { Classification, TxkitErrorOptions } from './errors.js';
export { DEFAULT_RETRY_POLICY, backoffDelay, resolveRetryPolicy } from './retry-policy.js';
export { createTransactionContext } from './context.js';
export { checkKnownOptions } from './options.js';
export { trackWork } from './pending-work.js';
export type { ContextOptions } from './context.js';
export type { HookErrorHandler } from './hooks.js';
export type { CommitOutcome, DriverBeginInfo, DriverCapabilities, DriverSavepoint, DriverTransaction, NativeEnd, TransactionDriver } from './driver.js';
export { withTransaction } from './with-transaction.js';
export type {
  BackendName,
  BeginOptions,
  OptionalPropagation,
  OptionalTransactionCallback,
  Propagation,
  RequiredPropagation,
  RetryPolicy,
  RunOptions,
  Transaction,
  TransactionCallback,
  TransactionContext,
} from './types.js';
export { validateSendBatchRequest, validateSendOffsetsRequest, validateSendRequest } from './message-handle.js';
export type {
  MessageHandle,
  OutgoingMessage,
  RecordMetadata,
  SendBatchRequest,
  SendOffsetsRequest,
  SendRequest,
} from './message-handle.js';
export { errorTypeOf } from './telemetry.js';
export type {
  AttemptEvent,
  CommitResolvedEvent,
  CommitUnknownEvent,
  CommitUnknownResolution,
  LogMethod,
  Logger,
  RetryEvent,
  RetryReason,
  Telemetry,
  TransactionEndEvent,
  TransactionObserver,
  TransactionOutcome,
  TransactionStartEvent,
} from './telemetry.js';
