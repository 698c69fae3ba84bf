import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { ConfigError, TransientTransactionError, TxkitError, UnknownCommitResultError, classifyKnown } from '../../src/index.js';
import { classifyPulsarError } from '../../src/adapters/pulsar/index.js';
import {
  PulsarChecksumError,
  PulsarClientError,
  PulsarClosedError,
  PulsarConfigError,
  PulsarConnectionError,
  PulsarProtocolError,
  PulsarServerError,
  PulsarTimeoutError,
  PulsarTransactionsDisabledError,
  PulsarUnsupportedError,
} from '../../src/pulsar-client/errors.js';
import { fullTopicName } from '../../src/pulsar-client/topic-name.js';

const conflict = new PulsarServerError(23, 'already acked', 'ACK');
const all = [
  conflict,
  new PulsarProtocolError('garbage'),
  new PulsarChecksumError('bad crc', '1:2'),
  new PulsarConnectionError('refused'),
  new PulsarTimeoutError('SEND', 10),
  new PulsarUnsupportedError('LZ4'),
  new PulsarClosedError('client'),
  new PulsarTransactionsDisabledError(),
  new PulsarConfigError('bad option'),
];

describe('the Pulsar client errors', () => {
  it('are PulsarClientErrors of backend pulsar, and txkit errors by their brand', () => {
    for (const err of all) {
      assert.ok(err instanceof PulsarClientError, err.name);
      assert.ok(err instanceof Error, err.name);
      assert.ok(err instanceof TxkitError, `${err.name} is a TxkitError`);
      assert.equal(err.backend, 'pulsar');
      assert.equal(err.abortError, undefined);
      assert.ok(!(err instanceof TransientTransactionError), err.name);
      assert.ok(!(err instanceof UnknownCommitResultError), err.name);
    }
    assert.ok(new PulsarChecksumError('bad crc', '1:2') instanceof PulsarProtocolError);
    assert.ok(!(new PulsarProtocolError('x') instanceof PulsarChecksumError));
    assert.ok(!(new TxkitError('CONFIG', 'core error') instanceof PulsarClientError));
    assert.ok(!(new Error('plain') instanceof PulsarClientError));
  });

  it('PulsarConfigError is ConfigError (code CONFIG); no other client error is', () => {
    const config = new PulsarConfigError('bad option');
    assert.ok(config instanceof ConfigError);
    assert.equal(config.code, 'CONFIG');
    assert.equal(config.retriable, false);
    for (const err of all.filter((e) => e !== all.at(-1))) assert.ok(!(err instanceof ConfigError), err.name);
    assert.throws(() => fullTopicName(''), (err: unknown) => err instanceof PulsarConfigError && err instanceof ConfigError);
  });

  it('keep their codes, names and retriable flags', () => {
    assert.deepEqual(
      all.map((e) => [e.name, e.code, e.retriable]),
      [
        ['PulsarServerError', 'PULSAR_TRANSACTION_CONFLICT', false],
        ['PulsarProtocolError', 'PULSAR_PROTOCOL', false],
        ['PulsarChecksumError', 'PULSAR_CHECKSUM', false],
        ['PulsarConnectionError', 'PULSAR_CONNECTION', true],
        ['PulsarTimeoutError', 'PULSAR_TIMEOUT', true],
        ['PulsarUnsupportedError', 'PULSAR_UNSUPPORTED', false],
        ['PulsarClosedError', 'PULSAR_CLOSED', false],
        ['PulsarTransactionsDisabledError', 'PULSAR_TRANSACTIONS_DISABLED', false],
        ['PulsarConfigError', 'CONFIG', false],
      ],
    );
    const cause = new Error('socket');
    assert.equal(new PulsarConnectionError('refused', { cause }).cause, cause);
  });

  it('are classified by retriable, by the adapter and by the core alike', () => {
    for (const err of all) {
      const expected = err.retriable ? 'transient' : 'fatal';
      assert.equal(classifyPulsarError(err), expected, err.name);
      assert.equal(classifyKnown(err), expected, err.name);
    }
    assert.equal(classifyPulsarError(new PulsarServerError(20, 'loading', 'NEW_TXN')), 'transient');
  });

  it('are recognised across copies of the client by their brand', async () => {
    // A second evaluation of the module stands for another copy (the CommonJS build, another version).
    const second = new URL('../../src/pulsar-client/errors.ts?copy', import.meta.url).href;
    const copy = (await import(/* @vite-ignore */ second)) as typeof import('../../src/pulsar-client/errors.js');
    assert.notEqual(copy.PulsarServerError, PulsarServerError, 'the module was loaded twice');
    const theirs = new copy.PulsarServerError(23, 'm', 'ACK');
    assert.ok(theirs instanceof PulsarServerError && theirs instanceof PulsarClientError && theirs instanceof TxkitError);
    assert.ok(conflict instanceof copy.PulsarServerError && conflict instanceof copy.PulsarClientError);
    assert.ok(!(theirs instanceof PulsarTimeoutError));
    assert.ok(new copy.PulsarConfigError('x') instanceof ConfigError);
  });
});
