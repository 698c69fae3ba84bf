import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'vitest';
import { DEFAULT_KAFKA_PRODUCER_RETRY } from '../../src/adapters/kafka/index.js';
import { sendOffsetsQuickly } from '../../src/adapters/kafka/kafka-driver.js';

// kafkajs builds protocol errors from the broker's numeric code with this function; use the real thing.
const { createErrorFromCode } = createRequire(import.meta.url)('kafkajs/src/protocol/error.js') as {
  createErrorFromCode(code: number): Error & { type: string };
};

const offsets = { consumerGroupId: 'g', topics: [{ topic: 't', partitions: [{ partition: 0, offset: '5' }] }] };

/** A kafkajs transaction whose AddOffsetsToTxn is refused with `errors`, one per call, then accepted. */
function refusing(...errors: Error[]): { sendOffsets: () => Promise<void>; calls: () => number } {
  let calls = 0;
  return {
    sendOffsets: async () => {
      const err = errors[calls++];
      if (err !== undefined) throw err;
    },
    calls: () => calls,
  };
}

describe('sendOffsets on kafkajs: AddOffsetsToTxn re-sent on CONCURRENT_TRANSACTIONS', () => {
  it('a refusal that clears is re-sent until the coordinator takes it (default retry)', async () => {
    const native = refusing(createErrorFromCode(51), createErrorFromCode(51));
    await sendOffsetsQuickly(native, offsets, { ...DEFAULT_KAFKA_PRODUCER_RETRY });
    assert.equal(native.calls(), 3);
  });

  it('follows the producer retry the caller set: as many re-sends as it allows, then the refusal', async () => {
    const concurrent = createErrorFromCode(51);
    const native = refusing(concurrent, concurrent, concurrent, concurrent);
    await assert.rejects(sendOffsetsQuickly(native, offsets, { ...DEFAULT_KAFKA_PRODUCER_RETRY, retries: 2 }), (e: unknown) => e === concurrent);
    assert.equal(native.calls(), 3, 'the first send and two re-sends');
  });

  it('any other error is not re-sent', async () => {
    const fenced = createErrorFromCode(90);
    const native = refusing(fenced);
    await assert.rejects(sendOffsetsQuickly(native, offsets, undefined), (e: unknown) => e === fenced);
    assert.equal(native.calls(), 1);
  });
});
