export { INSTRUMENTATION_SCOPE, TXKIT_TELEMETRY_NAMES, openTelemetry } from './otel-telemetry.js';
export type { OpenTelemetryOptions } from './otel-telemetry.js';
export { observeOutbox } from './otel-outbox.js';
export type { OutboxMetrics, OutboxMetricsOptions, OutboxStatusSource } from './otel-outbox.js';
