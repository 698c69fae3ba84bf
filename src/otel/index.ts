/**
 * OpenTelemetry for txkit: {@link openTelemetry} turns every unit of work into
 * a span with events and metrics (pass it as a context's `telemetry` option),
 * and {@link observeOutbox} exports an outbox store's backlog, lag and dead
 * letters as gauges. The only module of txkit that loads the OpenTelemetry API.
 *
 * @module txkit/otel
 */
export { INSTRUMENTATION_SCOPE, TXKIT_TELEMETRY_NAMES, openTelemetry } from './otel-telemetry.js';
export type { OpenTelemetryOptions } from './otel-telemetry.js';
export { observeOutbox } from './otel-outbox.js';
export type { OutboxMetrics, OutboxMetricsOptions, OutboxStatusSource } from './otel-outbox.js';
