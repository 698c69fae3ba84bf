import { metrics } from '@opentelemetry/api';
import type { BatchObservableResult, Meter, ObservableGauge } from '@opentelemetry/api';
import { ConfigError } from '../core/index.js';
import type { Logger } from '../core/index.js';
import type { OutboxStatus } from '../outbox/outbox-types.js';
import { INSTRUMENTATION_SCOPE, TXKIT_TELEMETRY_NAMES } from './otel-telemetry.js';

/** Options of {@link observeOutbox}. */
export interface OutboxMetricsOptions {
  /** Meter the gauges are created on. @default the global meter provider's meter named 'txkit' */
  meter?: Meter;
  /** Value of the `txkit.outbox.name` attribute, to tell several outboxes apart. @default 'default' */
  name?: string;
  /** Where a failed status read goes (that collection then has no outbox values). @default a process warning (code TXKIT_OUTBOX_STATUS) */
  logger?: Logger;
}

/** What the gauges read: the outbox store's status (`SqlOutboxStore`, `MemoryOutboxStore`, ...). */
export interface OutboxStatusSource {
  /** The store's current status, read once per metric collection. */
  status(): Promise<OutboxStatus>;
}

/** The handle {@link observeOutbox} returns, to stop observing. */
export interface OutboxMetrics {
  /** Stops observing; the gauges report nothing for this outbox afterwards. Idempotent. */
  stop(): void;
}

/**
 * Observable gauges of an outbox, read from `store.status()` at each metric
 * collection: `txkit.outbox.backlog` (records some relay id has not sent, per
 * partition), `txkit.outbox.lag` (age in seconds of the oldest of them, 0
 * when none wait) and `txkit.outbox.dead_letters`. They come from the store,
 * not from a relay, so a relay that is down shows as a growing backlog and
 * lag instead of as silence.
 *
 * @throws {@link txkit!ConfigError | ConfigError} when `store` has no `status()`, `meter` has no
 *   `createObservableGauge()`, or `name` is not a non-empty string.
 *
 * @example
 * const outboxMetrics = observeOutbox(store, { name: 'orders' });
 * // ... on shutdown:
 * outboxMetrics.stop();
 */
export function observeOutbox(store: OutboxStatusSource, options: OutboxMetricsOptions = {}): OutboxMetrics {
  if (typeof (store as Partial<OutboxStatusSource> | null | undefined)?.status !== 'function') {
    throw new ConfigError('observeOutbox(store) needs an outbox store with status() (sqlOutboxStore, MemoryOutboxStore, ...)');
  }
  const { meter = metrics.getMeter(INSTRUMENTATION_SCOPE), name = 'default', logger } = options;
  if (typeof (meter as Partial<Meter>).createObservableGauge !== 'function') {
    throw new ConfigError('observeOutbox({ meter }) needs an OpenTelemetry Meter (an object with createObservableGauge())');
  }
  if (typeof name !== 'string' || name === '') {
    throw new ConfigError(`observeOutbox({ name }) needs a non-empty string, got ${JSON.stringify(name)}`);
  }
  const n = TXKIT_TELEMETRY_NAMES;
  const backlog = meter.createObservableGauge(n.outboxBacklog, {
    description: 'Outbox records committed but not yet reported relayed by every known relay id',
    unit: '{record}',
  });
  const lag = meter.createObservableGauge(n.outboxLag, {
    description: 'Age of the oldest outbox record not yet reported relayed (0 when none waits)',
    unit: 's',
  });
  const deadLetters = meter.createObservableGauge(n.outboxDeadLetters, {
    description: 'Messages in the dead-letter store',
    unit: '{message}',
  });
  const observables: ObservableGauge[] = [backlog, lag, deadLetters];
  const callback = async (result: BatchObservableResult): Promise<void> => {
    let status: OutboxStatus;
    try {
      status = await store.status();
    } catch (err) {
      reportStatusFailure(err, name, logger);
      return;
    }
    for (const p of status.partitions) {
      const attributes = { 'txkit.outbox.name': name, 'txkit.outbox.partition': p.partition };
      result.observe(backlog, p.pending, attributes);
      result.observe(lag, (p.oldestPendingAgeMs ?? 0) / 1000, attributes);
    }
    result.observe(deadLetters, status.deadLetters, { 'txkit.outbox.name': name });
  };
  meter.addBatchObservableCallback(callback, observables);
  let stopped = false;
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      meter.removeBatchObservableCallback(callback, observables);
    },
  };
}

function reportStatusFailure(err: unknown, name: string, logger: Logger | undefined): void {
  const msg = `txkit: reading the status of outbox '${name}' for its metrics failed; this collection has no outbox values`;
  if (logger?.error !== undefined) {
    logger.error({ err, outbox: name }, msg);
    return;
  }
  process.emitWarning(`${msg}: ${err instanceof Error ? err.message : String(err)}`, { code: 'TXKIT_OUTBOX_STATUS' });
}
