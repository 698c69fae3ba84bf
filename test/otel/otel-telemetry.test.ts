import { SpanStatusCode, context, metrics, trace } from '@opentelemetry/api';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { memoryTransactions } from 'txkit/memory';
import { TXKIT_TELEMETRY_NAMES, openTelemetry } from 'txkit/otel';
import { injectFaults, rejection } from 'txkit/testing';
import { AfterCommitHookError, ConfigError, TxkitError, createTransactionContext } from 'txkit';
import type { NativeErrorCode } from 'txkit';
import type { Telemetry } from 'txkit';
import { ScriptedDriver } from '../support/scripted-driver.js';
import type { AttemptScript, ScriptedDriverOptions } from '../support/scripted-driver.js';
import { AsyncLocalStorageContextManager, LEVEL, capturedPino, otelHarness, pointWith } from './otel-support.js';
import type { HistogramPoint, OtelHarness } from './otel-support.js';

const FAST = { initialDelayMs: 0, maxDelayMs: 0 };
const N = TXKIT_TELEMETRY_NAMES;

let otel: OtelHarness;
const contextManager = new AsyncLocalStorageContextManager();

beforeAll(() => {
  context.setGlobalContextManager(contextManager);
});
afterAll(() => {
  context.disable();
  trace.disable();
  metrics.disable();
});
afterEach(async () => {
  await otel?.shutdown();
});

function observed(extra: { logger?: ReturnType<typeof capturedPino>['logger'] } = {}) {
  otel = otelHarness();
  const ctx = memoryTransactions({ retry: FAST, telemetry: openTelemetry({ tracer: otel.tracer, meter: otel.meter }), ...extra });
  return ctx;
}

function scripted(script: AttemptScript[], settle: ScriptedDriverOptions['settle'], logger?: ReturnType<typeof capturedPino>['logger']) {
  otel = otelHarness();
  const driver = new ScriptedDriver({ script, settle });
  const telemetry = openTelemetry({ tracer: otel.tracer, meter: otel.meter });
  const ctx = createTransactionContext(driver, logger === undefined ? { retry: FAST, telemetry } : { retry: FAST, telemetry, logger });
  return { driver, ctx };
}

const eventNames = (span: { events: { name: string }[] }): string[] => span.events.map((e) => e.name);

describe('openTelemetry(): spans', () => {
  it('a transaction retried after injected transient commits is one span with an event per attempt and retry', async () => {
    const ctx = observed();
    injectFaults(ctx, { on: 'commit', as: 'transient', times: 2 });
    await ctx.withTransaction(async (tx) => tx.handle.set('k', 1));

    const spans = otel.spans();
    expect(spans).toHaveLength(1);
    const [span] = spans;
    expect(span?.name).toBe(N.span);
    expect(span?.attributes).toMatchObject({
      'txkit.backend': 'memory',
      'txkit.propagation': 'required',
      'txkit.attempts': 3,
      'txkit.outcome': 'committed',
    });
    expect(span?.attributes['error.type']).toBeUndefined();
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
    expect(eventNames(span!)).toEqual([N.attemptEvent, N.retryEvent, N.attemptEvent, N.retryEvent, N.attemptEvent]);
    const retries = span!.events.filter((e) => e.name === N.retryEvent).map((e) => e.attributes);
    expect(retries).toEqual([
      expect.objectContaining({ 'txkit.attempt': 1, 'txkit.retry.reason': 'commit', 'error.type': 'INJECTED_TRANSIENT' }),
      expect.objectContaining({ 'txkit.attempt': 2, 'txkit.retry.reason': 'commit', 'error.type': 'INJECTED_TRANSIENT' }),
    ]);
    expect(span?.attributes['txkit.transaction.id']).toEqual(expect.any(String));
  });

  it('a failed transaction ends its span with error status, the exception and error.type', async () => {
    const ctx = observed();
    const err = await rejection(
      ctx.withTransaction(async () => {
        throw new TxkitError('ORDER_REJECTED' as NativeErrorCode, 'order 7 has no lines');
      }),
    );
    expect(err).toBeInstanceOf(TxkitError);
    const [span] = otel.spans();
    expect(span?.attributes).toMatchObject({ 'txkit.attempts': 1, 'txkit.outcome': 'error', 'error.type': 'ORDER_REJECTED' });
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'order 7 has no lines' });
    const exception = span?.events.find((e) => e.name === 'exception');
    expect(exception?.attributes?.['exception.message']).toBe('order 7 has no lines');
  });

  it('a callback that aborts and returns ends as aborted, without error status', async () => {
    const ctx = observed();
    await ctx.withTransaction(async (tx) => tx.abort());
    const [span] = otel.spans();
    expect(span?.attributes['txkit.outcome']).toBe('aborted');
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('the span is active in the callback; joined scopes add no span and requires_new nests a child span', async () => {
    const ctx = observed();
    const seen: { outer?: string | undefined; joined?: string | undefined; inner?: string | undefined } = {};
    await ctx.withTransaction(async () => {
      seen.outer = trace.getActiveSpan()?.spanContext().spanId;
      await ctx.withTransaction(async () => {
        seen.joined = trace.getActiveSpan()?.spanContext().spanId;
      });
      await ctx.withTransaction(
        async (tx) => {
          seen.inner = trace.getActiveSpan()?.spanContext().spanId;
          tx.handle.set('inner', 1);
        },
        { propagation: 'requires_new' },
      );
    });
    const spans = otel.spans();
    expect(spans).toHaveLength(2);
    const outer = spans.find((s) => s.attributes['txkit.propagation'] === 'required');
    const inner = spans.find((s) => s.attributes['txkit.propagation'] === 'requires_new');
    expect(seen.outer).toBe(outer?.spanContext().spanId);
    expect(seen.joined).toBe(seen.outer);
    expect(seen.inner).toBe(inner?.spanContext().spanId);
    expect(inner?.parentSpanContext?.spanId).toBe(outer?.spanContext().spanId);
    expect(trace.getActiveSpan()).toBeUndefined();
  });

  it('a span opened by the caller is the parent of the transaction span', async () => {
    const ctx = observed();
    await otel.tracer.startActiveSpan('handle request', async (request) => {
      await ctx.withTransaction(async (tx) => tx.handle.set('k', 1));
      request.end();
    });
    const tx = otel.spans().find((s) => s.name === N.span);
    const request = otel.spans().find((s) => s.name === 'handle request');
    expect(tx?.parentSpanContext?.spanId).toBe(request?.spanContext().spanId);
  });
});

describe('openTelemetry(): metrics', () => {
  it('a retried transaction records its duration, attempts and retries by reason', async () => {
    const ctx = observed();
    injectFaults(ctx, { on: 'commit', as: 'transient', times: 2 });
    await ctx.withTransaction(async (tx) => tx.handle.set('k', 1));
    await ctx.withTransaction(async (tx) => tx.handle.set('k', 2));

    const committed = { 'txkit.backend': 'memory', 'txkit.outcome': 'committed' };
    const duration = pointWith<HistogramPoint['value']>(await otel.points(N.duration), committed);
    expect(duration?.value.count).toBe(2);
    expect(duration?.value.sum).toBeGreaterThan(0);
    const attempts = pointWith<HistogramPoint['value']>(await otel.points(N.attempts), committed);
    expect(attempts?.value.count).toBe(2);
    expect(attempts?.value.sum).toBe(4);
    expect(attempts?.value.max).toBe(3);
    const retries = await otel.points(N.retries);
    expect(retries).toHaveLength(1);
    expect(retries[0]?.attributes).toEqual({ 'txkit.backend': 'memory', 'txkit.retry.reason': 'commit', 'error.type': 'INJECTED_TRANSIENT' });
    expect(retries[0]?.value).toBe(2);
  });

  it('a real write conflict of the memory backend counts as a retry with its own error type', async () => {
    const ctx = observed();
    let runs = 0;
    await ctx.withTransaction(async (tx) => {
      runs += 1;
      tx.handle.get('k');
      if (runs === 1) await ctx.withTransaction(async (other) => other.handle.set('k', 'other'), { propagation: 'requires_new' });
      tx.handle.set('k', 'mine');
    });
    expect(runs).toBe(2);
    const retries = await otel.points(N.retries);
    expect(retries.map((p) => [p.attributes['error.type'], p.value])).toEqual([['WRITE_CONFLICT', 1]]);
    expect(['callback', 'commit']).toContain(retries[0]?.attributes['txkit.retry.reason']);
  });

  it('an unknown commit that a resent commit settles counts as committed', async () => {
    const ctx = observed();
    injectFaults(ctx, { on: 'commit', as: 'commit-unknown' });
    await ctx.withTransaction(async (tx) => tx.handle.set('k', 1));
    expect(ctx.store.get('k')).toBe(1);

    const unknown = await otel.points(N.commitUnknown);
    expect(unknown.map((p) => [p.attributes, p.value])).toEqual([[{ 'txkit.backend': 'memory', 'txkit.commit.resolution': 'committed' }, 1]]);
    const [span] = otel.spans();
    expect(span?.attributes).toMatchObject({ 'txkit.attempts': 1, 'txkit.outcome': 'committed' });
    expect(eventNames(span!)).toEqual([N.attemptEvent, N.commitUnknownEvent, N.commitResolvedEvent]);
    expect(span?.events[1]?.attributes).toMatchObject({ 'txkit.commit.try': 1, 'error.type': 'INJECTED_COMMIT_UNKNOWN' });
    expect(span?.events[2]?.attributes).toMatchObject({ 'txkit.commit.resolution': 'committed', 'txkit.commit.tries': 2 });
    expect(await otel.points(N.retries)).toEqual([]);
  });

  it('an unknown commit that a resent commit settles counts as committed, also when an afterCommit hook then fails', async () => {
    const ctx = observed();
    injectFaults(ctx, { on: 'commit', as: 'commit-unknown' });
    const err = await rejection(
      ctx.withTransaction(async (tx) => {
        tx.handle.set('k', 1);
        tx.afterCommit(() => {
          throw new Error('notification service down');
        });
      }),
    );
    expect(err).toBeInstanceOf(AfterCommitHookError);
    expect(ctx.store.get('k')).toBe(1);
    const unknown = await otel.points(N.commitUnknown);
    expect(unknown.map((p) => p.attributes['txkit.commit.resolution'])).toEqual(['committed']);
    const [span] = otel.spans();
    expect(span?.events[2]?.attributes).toMatchObject({ 'txkit.commit.resolution': 'committed', 'txkit.commit.tries': 2 });
  });

  it('an unknown commit resolved as rolled back counts as rolled_back and reruns the unit with reason commit_rolled_back', async () => {
    const { ctx, driver } = scripted([{ commit: 'unknown-lost' }, {}], 'resolve');
    await ctx.withTransaction(async (tx) => tx.handle.write('effect'));
    expect(driver.applied).toEqual(['effect']);

    const unknown = await otel.points(N.commitUnknown);
    expect(unknown.map((p) => [p.attributes['txkit.commit.resolution'], p.value])).toEqual([['rolled_back', 1]]);
    const retries = await otel.points(N.retries);
    expect(retries.map((p) => [p.attributes['txkit.retry.reason'], p.attributes['error.type'], p.value])).toEqual([
      ['commit_rolled_back', 'COMMIT_ROLLED_BACK', 1],
    ]);
    expect(otel.spans()[0]?.attributes).toMatchObject({ 'txkit.attempts': 2, 'txkit.outcome': 'committed' });
  });

  it('an unknown commit nobody can settle counts as unresolved and fails the span', async () => {
    const { ctx } = scripted([{ commit: 'unknown-applied' }], 'none');
    await rejection(ctx.withTransaction(async (tx) => tx.handle.write('effect')));

    const unknown = await otel.points(N.commitUnknown);
    expect(unknown.map((p) => [p.attributes['txkit.commit.resolution'], p.value])).toEqual([['unresolved', 1]]);
    const [span] = otel.spans();
    expect(span?.attributes).toMatchObject({ 'txkit.outcome': 'error', 'error.type': 'COMMIT_UNKNOWN' });
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    const failed = pointWith<HistogramPoint['value']>(await otel.points(N.duration), { 'txkit.outcome': 'error' });
    expect(failed?.attributes['error.type']).toBe('COMMIT_UNKNOWN');
    expect(failed?.value.count).toBe(1);
  });

  it('a failure is recorded under outcome error with its error type, and is not counted as a retry', async () => {
    const ctx = observed();
    await rejection(
      ctx.withTransaction(async () => {
        throw new TxkitError('ORDER_REJECTED' as NativeErrorCode, 'no lines');
      }),
    );
    const duration = await otel.points(N.duration);
    expect(duration.map((p) => p.attributes)).toEqual([{ 'txkit.backend': 'memory', 'txkit.outcome': 'error', 'error.type': 'ORDER_REJECTED' }]);
    expect(await otel.points(N.retries)).toEqual([]);
  });
});

describe('logger', () => {
  it('a pino logger gets retries at debug, the unknown commit at warn and its settlement at info', async () => {
    const { logger, lines } = capturedPino('debug');
    const ctx = memoryTransactions({ retry: FAST, logger });
    injectFaults(ctx, { on: 'commit', as: 'transient' });
    await ctx.withTransaction(async (tx) => tx.handle.set('a', 1));
    injectFaults(ctx, { on: 'commit', as: 'commit-unknown' });
    await ctx.withTransaction(async (tx) => tx.handle.set('b', 1));

    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [LEVEL.debug, 'txkit: memory transaction attempt 1 failed (commit, transient); retrying'],
      [LEVEL.warn, 'txkit: the result of memory commit 1 of attempt 1 is unknown; retrying or resolving the commit only'],
      [LEVEL.info, 'txkit: the unknown memory commit result was settled: committed'],
    ]);
    expect(lines[0]).toMatchObject({ backend: 'memory', attempt: 1, reason: 'commit', errorType: 'INJECTED_TRANSIENT' });
    expect((lines[0]?.err as { type?: string } | undefined)?.type).toBe('TransientTransactionError');
    expect(lines[2]).toMatchObject({ resolution: 'committed', commitTries: 2 });
  });

  it('an unknown commit left unresolved is logged at error', async () => {
    const { logger, lines } = capturedPino('info');
    const { ctx } = scripted([{ commit: 'unknown-applied' }], 'none', logger);
    await rejection(ctx.withTransaction(async (tx) => tx.handle.write('x')));
    expect(lines.map((l) => [l.level, l.resolution])).toEqual([
      [LEVEL.warn, undefined],
      [LEVEL.error, 'unresolved'],
    ]);
  });

  it('a failed afterAbort hook goes to logger.error instead of a process warning', async () => {
    const { logger, lines } = capturedPino('info');
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    try {
      const ctx = memoryTransactions({ logger });
      await rejection(
        ctx.withTransaction(async (tx) => {
          tx.afterAbort(() => {
            throw new Error('audit log unavailable');
          });
          throw new TxkitError('ORDER_REJECTED' as NativeErrorCode, 'no lines');
        }),
      );
      // Warnings are emitted on the next tick: give one a chance to show up.
      await new Promise<void>((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual([]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: LEVEL.error, backend: 'memory', hook: 'afterAbort' });
    expect((lines[0]?.err as { message?: string }).message).toBe('audit log unavailable');
  });

  it('telemetry that throws never fails the transaction; the failure is logged', async () => {
    const { logger, lines } = capturedPino('error');
    const telemetry: Telemetry = {
      startTransaction: () => ({
        retry: () => {
          throw new Error('exporter down');
        },
        end: () => {
          throw new Error('exporter still down');
        },
      }),
    };
    const ctx = memoryTransactions({ retry: FAST, telemetry, logger });
    injectFaults(ctx, { on: 'commit', as: 'transient' });
    await ctx.withTransaction(async (tx) => tx.handle.set('k', 1));
    expect(ctx.store.get('k')).toBe(1);
    expect(lines.map((l) => l.hook)).toEqual(['retry', 'end']);
    expect(lines.every((l) => l.level === LEVEL.error)).toBe(true);
  });

  it('a startTransaction that throws leaves the unit unobserved but running', async () => {
    const { logger, lines } = capturedPino('error');
    const ctx = memoryTransactions({
      telemetry: {
        startTransaction: () => {
          throw new Error('no tracer');
        },
      },
      logger,
    });
    expect(await ctx.withTransaction(async (tx) => (tx.handle.set('k', 1), 'done'))).toBe('done');
    expect(lines.map((l) => l.hook)).toEqual(['startTransaction']);
  });
});

describe('options', () => {
  it('rejects a telemetry or logger that is not one, with ConfigError', () => {
    expect(() => memoryTransactions({ telemetry: {} as Telemetry })).toThrow(ConfigError);
    expect(() => memoryTransactions({ logger: 'console' as never })).toThrow(/logger must be an object/);
    expect(() => memoryTransactions({ logger: { warn: 'yes' } as never })).toThrow(/logger.warn must be a function/);
    expect(() => openTelemetry({ tracer: {} as never })).toThrow(ConfigError);
    expect(() => openTelemetry({ meter: {} as never })).toThrow(/needs an OpenTelemetry Meter/);
  });
});

describe('the global OpenTelemetry providers', () => {
  let global: OtelHarness;
  beforeAll(() => {
    global = otelHarness();
    expect(trace.setGlobalTracerProvider(global.tracerProvider)).toBe(true);
    expect(metrics.setGlobalMeterProvider(global.meterProvider)).toBe(true);
  });
  afterAll(async () => {
    await global.shutdown();
  });

  it('without options, a context records nothing to them and prints nothing, even while retrying', async () => {
    const writes = [vi.spyOn(process.stdout, 'write'), vi.spyOn(process.stderr, 'write')];
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    try {
      const ctx = memoryTransactions({ retry: FAST });
      injectFaults(ctx, { on: 'commit', as: 'transient' });
      await ctx.withTransaction(async (tx) => tx.handle.set('k', 1));
      injectFaults(ctx, { on: 'commit', as: 'commit-unknown' });
      await ctx.withTransaction(async (tx) => tx.handle.set('k', 2));
      await rejection(
        ctx.withTransaction(async () => {
          throw new TxkitError('ORDER_REJECTED' as NativeErrorCode, 'no lines');
        }),
      );
      await new Promise<void>((resolve) => setImmediate(resolve));
      expect(ctx.store.get('k')).toBe(2);
      expect(writes.map((w) => w.mock.calls.length)).toEqual([0, 0]);
    } finally {
      for (const w of writes) w.mockRestore();
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual([]);
    expect(global.spans()).toEqual([]);
    expect(await global.metricNames()).toEqual([]);
  });

  it('openTelemetry() without a tracer or meter uses them', async () => {
    const ctx = memoryTransactions({ telemetry: openTelemetry() });
    await ctx.withTransaction(async (tx) => tx.handle.set('k', 1));
    expect(global.spans().map((s) => [s.name, s.instrumentationScope.name])).toEqual([[N.span, 'txkit']]);
    expect(await global.metricNames()).toEqual(expect.arrayContaining([N.duration, N.attempts]));
  });
});
