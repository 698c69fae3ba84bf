import { describe, expect, it } from 'vitest';
import { service } from '../../test/support/services.js';
import { runExample } from './main.js';

const brokers = service('kafka');
const pg = service('postgres');

describe.skipIf(brokers === undefined || pg === undefined)('example: Kafka -> Postgres -> Kafka', () => {
  it('every payment changes its balance once and yields one balance event', async () => {
    const report = await runExample(brokers as string, pg as string, 300);
    expect(report).toEqual({ payments: 300, events: 300, distinctEvents: 300, wrongBalances: 0 });
  });
});
