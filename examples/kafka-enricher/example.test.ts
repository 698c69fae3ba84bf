import { describe, expect, it } from 'vitest';
import { service } from '../../test/support/services.js';
import { runExample } from './main.js';

const brokers = service('kafka');

describe.skipIf(brokers === undefined)('example: Kafka -> Kafka on @platformatic/kafka', () => {
  it('every order is enriched once', async () => {
    expect(await runExample(brokers as string, 300)).toEqual({ orders: 300, enriched: 300, distinct: 300 });
  });
});
