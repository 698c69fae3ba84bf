import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import kafkajs from 'kafkajs';
import { describe, it } from 'vitest';
import { FencedError, TransientTransactionError, TxkitError, UnknownCommitResultError } from '../../src/core/index.js';
import { KAFKA_ERROR_TABLE, classifyKafkaError } from '../../src/adapters/kafka/index.js';
import { translateKafkaError } from '../../src/adapters/kafka/kafka-errors.js';

// kafkajs builds protocol errors from the broker's numeric code with this function; use the real thing.
const { createErrorFromCode } = createRequire(import.meta.url)('kafkajs/src/protocol/error.js') as {
  createErrorFromCode(code: number): Error & { type: string; code: number; retriable: boolean };
};

const timeout = (): Error =>
  new kafkajs.KafkaJSRequestTimeoutError('Request timed out', { broker: '127.0.0.1:9092', clientId: 'test', correlationId: 1, createdAt: 0, sentAt: 0, pendingDuration: 0 });

describe('kafka error classification table', () => {
  it('every row has a code, a kind and a reason, and kafkajs errors with that code classify by it', () => {
    for (const [name, rule] of Object.entries(KAFKA_ERROR_TABLE)) {
      assert.ok(rule.reason.length > 20, `${name} needs its reason`);
      const err = createErrorFromCode(rule.code);
      const expected = rule.kind === 'transient' ? 'transient' : 'fatal';
      assert.equal(classifyKafkaError(err), expected, `${name} (${rule.code})`);
    }
  });

  it('follows the Java client on the named cases', () => {
    const kind = (code: number) => translateKafkaError(createErrorFromCode(code), 'send', 'id');
    for (const code of [51, 14, 15, 16]) assert.ok(kind(code) instanceof TransientTransactionError, `code ${code}`);
    for (const code of [90, 47]) assert.ok(kind(code) instanceof FencedError, `code ${code}`);
    const authz = kind(53);
    assert.ok(authz instanceof TxkitError && !(authz instanceof TransientTransactionError) && !authz.retriable);
  });

  it('uses the numeric code, so codes kafkajs has no name for (PRODUCER_FENCED = 90) still classify', () => {
    const err = createErrorFromCode(90);
    assert.equal(err.type, 'KAFKAJS_UNKNOWN_ERROR_CODE');
    assert.ok(translateKafkaError(err, 'commit', 'id') instanceof FencedError);
  });

  it('looks through kafkajs retry wrappers to the last protocol error', () => {
    const wrapped = new kafkajs.KafkaJSNumberOfRetriesExceeded(createErrorFromCode(6), { retryCount: 10, retryTime: 1000 });
    assert.equal(classifyKafkaError(wrapped), 'transient');
    const translated = translateKafkaError(wrapped, 'send', 'id');
    assert.ok(translated instanceof TransientTransactionError);
    assert.equal((translated as TransientTransactionError).cause, wrapped, 'the native error is the cause, untouched');
  });

  it('a request without a reply is transient, except at EndTxn where the outcome is unknown', () => {
    assert.ok(translateKafkaError(timeout(), 'send', 'id') instanceof TransientTransactionError);
    const atCommit = translateKafkaError(timeout(), 'commit', 'id');
    assert.ok(atCommit instanceof UnknownCommitResultError);
    assert.equal(classifyKafkaError(atCommit), 'commit-unknown');
    assert.match((atCommit as Error).message, /kafka/);
  });

  it('a coordinator no broker could name (the broker restarting) is transient: sendOffsets reruns the unit instead of stopping it', () => {
    const lookup = new (kafkajs.KafkaJSGroupCoordinatorNotFound as unknown as new (message: string) => Error)('Failed to find group coordinator');
    assert.ok(translateKafkaError(lookup, 'sendOffsets', 'id') instanceof TransientTransactionError);
    assert.ok(translateKafkaError(lookup, 'commit', 'id') instanceof UnknownCommitResultError, 'at EndTxn it stays unknown, as every unanswered request');
  });

  it('@platformatic/kafka errors (the library\'s own classes): protocol codes by the table, no answer, and what a retry wrapper holds', async () => {
    const { MultipleErrors, NetworkError, ProtocolError, ResponseError, TimeoutError, UserError } = await import('@platformatic/kafka');
    const protocol = (code: number): Error => new ProtocolError(code);
    assert.ok(translateKafkaError(protocol(51), 'send', 'id') instanceof TransientTransactionError);
    assert.ok(translateKafkaError(protocol(90), 'commit', 'id') instanceof FencedError);
    const stale = translateKafkaError(protocol(22), 'sendOffsets', 'id');
    assert.ok(stale instanceof TxkitError && stale.code === 'ILLEGAL_GENERATION' && !stale.retriable, String(stale));
    const network = new NetworkError('Connection closed');
    assert.ok(translateKafkaError(network, 'send', 'id') instanceof TransientTransactionError);
    assert.ok(translateKafkaError(network, 'commit', 'id') instanceof UnknownCommitResultError);
    assert.ok(translateKafkaError(new TimeoutError('Request timed out'), 'commit', 'id') instanceof UnknownCommitResultError);
    // A retry wrapper: the attempts' errors; a fencing among them decides, else the last the table knows.
    const retried = new MultipleErrors('endTransaction failed 3 times.', [network, protocol(51), network]);
    assert.ok(translateKafkaError(retried, 'send', 'id') instanceof TransientTransactionError);
    const fenced = new ResponseError(24, 5, { '/results/0': [51, null], '/results/1': [90, null] }, {});
    assert.ok(translateKafkaError(fenced, 'send', 'id') instanceof FencedError, String(translateKafkaError(fenced, 'send', 'id')));
    const refused = translateKafkaError(new UserError('Unknown topic t.'), 'send', 'id');
    assert.ok(refused instanceof TxkitError && !refused.retriable && /Unknown topic t\./.test(refused.message), String(refused));
  });

  it('unknown errors are fatal and never retried', () => {
    assert.equal(classifyKafkaError(new Error('something else')), 'fatal');
    assert.equal(classifyKafkaError(createErrorFromCode(9999)), 'fatal');
    const unknown = translateKafkaError(new kafkajs.KafkaJSNonRetriableError('odd'), 'send', 'id');
    assert.ok(unknown instanceof TxkitError && !unknown.retriable);
    const plain = new TypeError('user bug');
    assert.equal(translateKafkaError(plain, 'send', 'id'), plain, 'non-kafkajs errors pass through');
  });

  it('docs/guides/kafka.md lists every row of the table with the same verdict', () => {
    const doc = readFileSync(new URL('../../docs/guides/kafka.md', import.meta.url), 'utf8').split('\n');
    for (const [name, rule] of Object.entries(KAFKA_ERROR_TABLE)) {
      const line = doc.find((l) => l.startsWith(`| ${name} (${rule.code}) |`));
      assert.ok(line !== undefined, `the guide's table lacks ${name} (${rule.code})`);
      assert.ok(line.split('|')[2]?.trim().startsWith(rule.kind), `the guide's verdict for ${name} is not ${rule.kind}: ${line}`);
    }
  });
});
