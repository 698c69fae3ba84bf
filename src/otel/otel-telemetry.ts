import { SpanKind, SpanStatusCode, context, metrics, trace } from '@opentelemetry/api';
import type { Attributes, Counter, Histogram, Meter, Span, Tracer } from '@opentelemetry/api';
import { ConfigError } from '../core/index.js';
import type {
  AttemptEvent,
  CommitResolvedEvent,
  CommitUnknownEvent,
  RetryEvent,
  Telemetry,
  TransactionEndEvent,
  TransactionObserver,
  TransactionStartEvent,
} from '../core/index.js';

/** Instrumentation scope name of txkit's tracer and meter. */
export const INSTRUMENTATION_SCOPE = 'txkit';

/** Names of the span, its events and the instruments txkit records. */
export const TXKIT_TELEMETRY_NAMES = Object.freeze({
  span: 'txkit.transaction',
  attemptEvent: 'txkit.attempt',
  retryEvent: 'txkit.retry',
  commitUnknownEvent: 'txkit.commit.unknown',
  commitResolvedEvent: 'txkit.commit.resolved',
  duration: 'txkit.transaction.duration',
  attempts: 'txkit.transaction.attempts',
  retries: 'txkit.transaction.retries',
  commitUnknown: 'txkit.commit.unknown',
  outboxBacklog: 'txkit.outbox.backlog',
  outboxLag: 'txkit.outbox.lag',
  outboxDeadLetters: 'txkit.outbox.dead_letters',
});

/** Options of {@link openTelemetry}: where its spans and metrics go. */
export interface OpenTelemetryOptions {
  /** Tracer of the transaction spans. @default the global tracer provider's tracer named 'txkit' */
  tracer?: Tracer;
  /** Meter of the transaction metrics. @default the global meter provider's meter named 'txkit' */
  meter?: Meter;
}

// Seconds, as OpenTelemetry's semantic conventions ask of durations; from 1 ms to the default 120 s retry deadline.
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const ATTEMPT_BUCKETS = [1, 2, 3, 4, 5, 10, 20, 50, 100];

interface Instruments {
  readonly tracer: Tracer;
  readonly duration: Histogram;
  readonly attempts: Histogram;
  readonly retries: Counter;
  readonly commitUnknown: Counter;
}

/**
 * Telemetry on `@opentelemetry/api`: one span per unit of work (the
 * outermost `withTransaction` call, every attempt included) with an event
 * per attempt, retry and unknown commit result, plus the metrics
 * `txkit.transaction.duration`, `txkit.transaction.attempts`,
 * `txkit.transaction.retries` and `txkit.commit.unknown`. The span is the
 * active one while the callback runs, so instrumented database and broker
 * clients nest their spans under it.
 *
 * @throws {@link txkit!ConfigError | ConfigError} when `options` is not an object, `tracer` has no `startSpan()`,
 *   or `meter` lacks `createHistogram()` or `createCounter()`.
 *
 * @example
 * const ctx = pgTransactions(pool, { telemetry: openTelemetry() });
 */
export function openTelemetry(options: OpenTelemetryOptions = {}): Telemetry {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError(`openTelemetry(options) needs an options object or nothing, got ${String(options)}`);
  }
  const { tracer = trace.getTracer(INSTRUMENTATION_SCOPE), meter = metrics.getMeter(INSTRUMENTATION_SCOPE) } = options;
  if (typeof (tracer as Partial<Tracer>).startSpan !== 'function') {
    throw new ConfigError('openTelemetry({ tracer }) needs an OpenTelemetry Tracer (an object with startSpan())');
  }
  if (typeof (meter as Partial<Meter>).createHistogram !== 'function' || typeof (meter as Partial<Meter>).createCounter !== 'function') {
    throw new ConfigError('openTelemetry({ meter }) needs an OpenTelemetry Meter (an object with createHistogram() and createCounter())');
  }
  const n = TXKIT_TELEMETRY_NAMES;
  const instruments: Instruments = {
    tracer,
    duration: meter.createHistogram(n.duration, {
      description: 'Duration of a unit of work, all attempts and back-offs included',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    }),
    attempts: meter.createHistogram(n.attempts, {
      description: 'Attempts a unit of work took, the last one included',
      unit: '{attempt}',
      advice: { explicitBucketBoundaries: ATTEMPT_BUCKETS },
    }),
    retries: meter.createCounter(n.retries, {
      description: 'Reruns of a unit of work after a transient failure, by reason',
      unit: '{retry}',
    }),
    commitUnknown: meter.createCounter(n.commitUnknown, {
      description: 'Commits whose result was unknown, by how they were settled',
      unit: '{commit}',
    }),
  };
  return {
    startTransaction: (event) => new SpanObserver(instruments, event),
  };
}

/** One unit of work as a span, recording its metrics when it ends. */
class SpanObserver implements TransactionObserver {
  readonly #i: Instruments;
  readonly #span: Span;
  readonly #backend: string;

  constructor(instruments: Instruments, event: TransactionStartEvent) {
    this.#i = instruments;
    this.#backend = event.backend;
    this.#span = instruments.tracer.startSpan(TXKIT_TELEMETRY_NAMES.span, {
      kind: SpanKind.INTERNAL,
      attributes: { 'txkit.backend': event.backend, 'txkit.propagation': event.propagation },
    });
  }

  runInScope<T>(fn: () => Promise<T>): Promise<T> {
    return context.with(trace.setSpan(context.active(), this.#span), fn);
  }

  attemptStarted(event: AttemptEvent): void {
    this.#span.addEvent(TXKIT_TELEMETRY_NAMES.attemptEvent, { 'txkit.attempt': event.attempt });
  }

  retry(event: RetryEvent): void {
    this.#span.addEvent(TXKIT_TELEMETRY_NAMES.retryEvent, {
      'txkit.attempt': event.attempt,
      'txkit.retry.reason': event.reason,
      'txkit.retry.delay_ms': event.delayMs,
      'error.type': event.errorType,
    });
    this.#i.retries.add(1, { 'txkit.backend': this.#backend, 'txkit.retry.reason': event.reason, 'error.type': event.errorType });
  }

  commitUnknown(event: CommitUnknownEvent): void {
    this.#span.addEvent(TXKIT_TELEMETRY_NAMES.commitUnknownEvent, {
      'txkit.attempt': event.attempt,
      'txkit.commit.try': event.commitTry,
      'error.type': event.errorType,
    });
  }

  commitResolved(event: CommitResolvedEvent): void {
    this.#span.addEvent(TXKIT_TELEMETRY_NAMES.commitResolvedEvent, {
      'txkit.attempt': event.attempt,
      'txkit.commit.resolution': event.resolution,
      'txkit.commit.tries': event.commitTries,
    });
    this.#i.commitUnknown.add(1, { 'txkit.backend': this.#backend, 'txkit.commit.resolution': event.resolution });
  }

  end(event: TransactionEndEvent): void {
    const span = this.#span;
    const metricAttributes: Attributes = { 'txkit.backend': this.#backend, 'txkit.outcome': event.outcome };
    span.setAttribute('txkit.attempts', event.attempts);
    span.setAttribute('txkit.outcome', event.outcome);
    if (event.transactionId !== undefined) span.setAttribute('txkit.transaction.id', event.transactionId);
    if (event.outcome === 'error') {
      const errorType = event.errorType ?? 'unknown';
      span.setAttribute('error.type', errorType);
      metricAttributes['error.type'] = errorType;
      const { error } = event;
      if (error instanceof Error) span.recordException(error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    }
    span.end();
    this.#i.duration.record(event.durationMs / 1000, metricAttributes);
    this.#i.attempts.record(event.attempts, metricAttributes);
  }
}
