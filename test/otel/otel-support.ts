/**
 * A real OpenTelemetry SDK wired for assertions: spans go to the SDK's
 * in-memory exporter, metrics are pulled through an SDK MetricReader, and a
 * pino logger writes JSON lines into an array.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import type { Attributes, Context, ContextManager, Meter, Tracer } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import type { DataPoint, Histogram, MetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { pino } from 'pino';
import type { Logger as PinoLogger } from 'pino';

/**
 * The API's ContextManager on AsyncLocalStorage (what @opentelemetry/context-async-hooks
 * does), so the active span follows async calls as it does in an instrumented service.
 */
export class AsyncLocalStorageContextManager implements ContextManager {
  readonly #storage = new AsyncLocalStorage<Context>();

  active(): Context {
    return this.#storage.getStore() ?? ROOT_CONTEXT;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    context: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.#storage.run(context, () => fn.call(thisArg, ...args));
  }

  bind<T>(context: Context, target: T): T {
    if (typeof target !== 'function') return target;
    const run = (...args: unknown[]): unknown => this.with(context, () => (target as (...a: unknown[]) => unknown)(...args));
    return run as T;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    this.#storage.disable();
    return this;
  }
}

/** A pull reader: `collect()` reads every instrument now. */
class PullReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

export interface OtelHarness {
  readonly tracer: Tracer;
  readonly meter: Meter;
  readonly tracerProvider: BasicTracerProvider;
  readonly meterProvider: MeterProvider;
  spans(): ReadableSpan[];
  /** Every data point of the metric `name`, read now; [] when it has none. */
  points(name: string): Promise<DataPoint<unknown>[]>;
  metricNames(): Promise<string[]>;
  shutdown(): Promise<void>;
}

export function otelHarness(): OtelHarness {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const reader = new PullReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const collect = async (): Promise<MetricData[]> => {
    const { resourceMetrics, errors } = await reader.collect();
    if (errors.length > 0) throw new AggregateError(errors, 'metric collection failed');
    return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
  };
  return {
    tracer: tracerProvider.getTracer('txkit-test'),
    meter: meterProvider.getMeter('txkit-test'),
    tracerProvider,
    meterProvider,
    spans: () => exporter.getFinishedSpans(),
    points: async (name) => (await collect()).filter((m) => m.descriptor.name === name).flatMap((m) => m.dataPoints as DataPoint<unknown>[]),
    metricNames: async () => (await collect()).filter((m) => m.dataPoints.length > 0).map((m) => m.descriptor.name),
    shutdown: async () => {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}

/** The data point whose attributes include `attrs`. */
export function pointWith<T>(points: DataPoint<unknown>[], attrs: Attributes): DataPoint<T> | undefined {
  return points.find((p) => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v)) as DataPoint<T> | undefined;
}

export type HistogramPoint = DataPoint<Histogram>;

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A pino logger at `level` whose JSON lines land in `lines`. */
export function capturedPino(level: 'debug' | 'info' | 'warn' | 'error' = 'debug'): { logger: PinoLogger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level, base: null }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines };
}

/** pino's numeric levels. */
export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;
