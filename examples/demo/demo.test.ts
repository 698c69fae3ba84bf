import { describe, expect, it } from 'vitest';
import { service } from '../../test/support/services.js';
import { runDemo } from './run-demo.js';

describe('demo pipeline', () => {
  it('on SQLite: every order exactly once under injected faults and worker races; poison to dead letters', async () => {
    const report = await runDemo({ orders: 1200, poison: 3, transientFaults: 40, unknownCommits: 10 });
    expect(report.faultsInjected).toBeGreaterThanOrEqual(20);
    expect(report.retried).toBeGreaterThan(0);
    expect(report).toMatchObject({ input: 1200, processed: 1200, deadLetters: 3, duplicates: 0, lost: 0, stateMismatches: 0 });
  });

  const pg = service('postgres');
  it.skipIf(pg === undefined)('on Postgres (DATABASE_URL): the same guarantees', async () => {
    const report = await runDemo({ orders: 600, database: { client: 'pg', connection: pg as string } });
    expect(report).toMatchObject({ input: 600, processed: 600, deadLetters: 3, duplicates: 0, lost: 0, stateMismatches: 0 });
  });

  const kafka = service('kafka');
  it.skipIf(kafka === undefined)('on Kafka (KAFKA_BROKERS): kafkaSource in, kafkaSink out, the same guarantees', async () => {
    const report = await runDemo({ orders: 600, kafkaBrokers: kafka as string });
    expect(report).toMatchObject({ broker: 'kafka', input: 600, processed: 600, deadLetters: 3, duplicates: 0, lost: 0, stateMismatches: 0 });
  });
});
