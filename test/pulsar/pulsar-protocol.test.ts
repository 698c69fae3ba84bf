// The protocol client against a misbehaving peer: a scripted broker on loopback that sends
// garbage, truncated or contradictory frames, errors, or nothing. Every case must end in a
// typed error (never a crash, an unhandled rejection or a hang) and a client that closes.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { afterEach, describe, it } from 'vitest';
import { TransactionTimeoutError, TransientTransactionError, UnknownCommitResultError } from '../../src/index.js';
import {
  PULSAR_SERVER_ERROR_NAMES,
  PulsarChecksumError,
  PulsarClient,
  PulsarClosedError,
  PulsarConnectionError,
  PulsarProtocolError,
  PulsarServerError,
  PulsarTimeoutError,
  PulsarTransactionsDisabledError,
  PulsarUnsupportedError,
  pulsarTransactions,
} from '../../src/adapters/pulsar/index.js';
import { BaseCommandCodec, CommandType, toNumber } from '../../src/pulsar-client/wire/commands.js';
import { FrameDecoder, encodeCommand } from '../../src/pulsar-client/wire/frames.js';
import { rejection } from '../../src/testing/index.js';
import { ScriptedBroker } from './scripted-broker.js';
import type { Script } from './scripted-broker.js';
import { waitUntil } from './pulsar-support.js';

const TOPIC = 'persistent://public/default/scripted';
const brokers: ScriptedBroker[] = [];
const clients: PulsarClient[] = [];

async function broker(script?: Script): Promise<ScriptedBroker> {
  const b = await ScriptedBroker.start(script);
  brokers.push(b);
  return b;
}

/**
 * Runs a unit that sends one message and commits, against a broker that leaves the first
 * END_TXN unanswered; checks the same commit was sent twice and returns how often the unit ran.
 */
async function runsOfCommitSentTwice(b: ScriptedBroker): Promise<number> {
  const ctx = pulsarTransactions({ client: client(b, { operationTimeoutMs: 300 }) });
  let runs = 0;
  await ctx.withTransaction(
    async (tx) => {
      runs += 1;
      await tx.handle.send({ topic: TOPIC, messages: [{ value: 'v' }] });
    },
    { retry: { initialDelayMs: 1, maxDelayMs: 5 } },
  );
  const bodies = b.bodies<{ txnAction: number; txnidLeastBits: number }>(CommandType.END_TXN);
  assert.deepEqual(bodies.map((e) => e.txnAction), [0, 0], 'the same commit, twice');
  assert.equal(toNumber(bodies[0]?.txnidLeastBits), toNumber(bodies[1]?.txnidLeastBits));
  await ctx.close();
  return runs;
}

function client(b: ScriptedBroker, options: { operationTimeoutMs?: number; keepAliveIntervalMs?: number } = {}): PulsarClient {
  const c = new PulsarClient({
    serviceUrl: b.url,
    operationTimeoutMs: options.operationTimeoutMs ?? 2_000,
    connectionTimeoutMs: 2_000,
    keepAliveIntervalMs: options.keepAliveIntervalMs ?? 30_000,
    initialReconnectDelayMs: 10,
    maxReconnectDelayMs: 50,
  });
  clients.push(c);
  return c;
}

/** A frame [totalSize][commandSize][bytes] with sizes as given (possibly lies). */
function rawFrame(totalSize: number, commandSize: number, bytes: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(totalSize, 0);
  head.writeUInt32BE(commandSize, 4);
  return Buffer.concat([head, bytes]);
}

function commandFrame(command: object): Buffer {
  const bytes = Buffer.from(BaseCommandCodec.encode(command).finish());
  return rawFrame(bytes.length + 4, bytes.length, bytes);
}

/** Answers the first PARTITIONED_METADATA request with `bytes` instead of a response. */
const answerMetadataWith =
  (bytes: Buffer, then: 'keep' | 'end' = 'keep'): Script =>
  (command, c) => {
    if (command.type !== CommandType.PARTITIONED_METADATA) return false;
    c.sendRaw(bytes);
    if (then === 'end') c.socket.end();
    return true;
  };

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(brokers.splice(0).map((b) => b.close()));
});

describe('pulsar protocol client against a misbehaving peer', () => {
  const cases: { name: string; script: Script; expect: new (...args: never[]) => Error; match?: RegExp }[] = [
    {
      name: 'an HTTP answer instead of CONNECTED',
      script: (command, c) => command.type === CommandType.CONNECT && (c.sendRaw(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')), true),
      expect: PulsarProtocolError,
      match: /exceeds the \d+-byte limit/,
    },
    {
      name: 'a frame smaller than its own size field',
      script: answerMetadataWith(rawFrame(2, 0, Buffer.alloc(0))),
      expect: PulsarProtocolError,
      match: /smaller than its command size field/,
    },
    {
      name: 'a command size running past the end of its frame',
      script: answerMetadataWith(rawFrame(8, 100, Buffer.from([1, 2, 3, 4]))),
      expect: PulsarProtocolError,
      match: /does not fit/,
    },
    {
      name: 'command bytes that are not protobuf',
      script: answerMetadataWith(rawFrame(9, 5, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]))),
      expect: PulsarProtocolError,
      match: /undecodable command/,
    },
    {
      name: 'a response without its body',
      script: answerMetadataWith(commandFrame({ type: CommandType.PARTITIONED_METADATA_RESPONSE })),
      expect: PulsarProtocolError,
      match: /arrived without its body/,
    },
    {
      name: 'a response missing a required field',
      // BaseCommand{ type: SUCCESS, success: {} }: CommandSuccess without its required request_id.
      script: answerMetadataWith(rawFrame(8, 4, Buffer.from([0x08, CommandType.SUCCESS, 0x6a, 0x00]))),
      expect: PulsarProtocolError,
      match: /missing required/,
    },
    {
      name: 'a payload frame whose metadata size runs past its end',
      script: answerMetadataWith(
        (() => {
          const cmd = Buffer.from(BaseCommandCodec.encode({ type: CommandType.PONG, pong: {} }).finish());
          const tail = Buffer.from([0x0e, 0x01, 0, 0, 0, 0, 0, 0, 0x10, 0]);
          return rawFrame(4 + cmd.length + tail.length, cmd.length, Buffer.concat([cmd, tail]));
        })(),
      ),
      expect: PulsarProtocolError,
      match: /runs past the end/,
    },
    {
      name: 'half a frame, then the connection closes',
      script: answerMetadataWith(encodeCommand(CommandType.SUCCESS, { requestId: 1 }).subarray(0, 5), 'end'),
      expect: PulsarConnectionError,
      match: /closed the connection/,
    },
    {
      name: 'half a frame, then silence',
      script: answerMetadataWith(encodeCommand(CommandType.SUCCESS, { requestId: 1 }).subarray(0, 5)),
      expect: PulsarTimeoutError,
    },
    {
      name: 'no answer to CONNECT at all',
      script: (command) => command.type === CommandType.CONNECT,
      expect: PulsarTimeoutError,
      match: /CONNECT/,
    },
    {
      name: 'an authentication challenge to a client without authentication',
      script: answerMetadataWith(commandFrame({ type: CommandType.AUTH_CHALLENGE, authChallenge: { challenge: { authMethodName: 'refresh' } } })),
      expect: PulsarUnsupportedError,
      match: /authentication/,
    },
  ];

  for (const c of cases) {
    it(`${c.name}: a typed ${c.expect.name}, and the client still closes`, async () => {
      const b = await broker(c.script);
      const pulsar = client(b, { operationTimeoutMs: 500 });
      const err = await rejection(pulsar.partitions(TOPIC));
      assert.ok(err instanceof c.expect, `expected ${c.expect.name}, got ${String(err)}`);
      if (c.match) assert.match((err as Error).message, c.match);
      await pulsar.close();
    });
  }

  it('after a corrupt frame the connection is replaced: the next request succeeds on a new one', async () => {
    let first = true;
    const b = await broker((command, c) => {
      if (command.type !== CommandType.PARTITIONED_METADATA || !first) return false;
      first = false;
      c.sendRaw(rawFrame(8, 100, Buffer.alloc(4)));
      return true;
    });
    const pulsar = client(b);
    assert.ok((await rejection(pulsar.partitions(TOPIC))) instanceof PulsarProtocolError);
    assert.equal(await pulsar.partitions(TOPIC), 0);
    assert.equal(b.connections.length, 2);
  });

  it('every ServerError code becomes a PulsarServerError naming it, classified by the table', async () => {
    let code = 0;
    const b = await broker((command, c) => {
      if (command.type !== CommandType.PARTITIONED_METADATA) return false;
      const requestId = toNumber((command.partitionMetadata as { requestId: number }).requestId);
      c.send(CommandType.ERROR, { requestId, error: code, message: `code ${code}` });
      return true;
    });
    const pulsar = client(b);
    const transient = new Set([
      'MetadataError',
      'PersistenceError',
      'ServiceNotReady',
      'ProducerBlockedQuotaExceededError',
      'ProducerBlockedQuotaExceededException',
      'ChecksumError',
      'ConsumerNotFound',
      'TooManyRequests',
      'TransactionCoordinatorNotFound',
    ]);
    for (code = 0; code < PULSAR_SERVER_ERROR_NAMES.length; code++) {
      const err = await rejection(pulsar.partitions(TOPIC));
      assert.ok(err instanceof PulsarServerError, `code ${code}: ${String(err)}`);
      const name = PULSAR_SERVER_ERROR_NAMES[code] as string;
      assert.equal(err.serverError, name);
      assert.equal(err.serverErrorCode, code);
      assert.equal(err.retriable, transient.has(name), `${name} retriable`);
      assert.equal(err.brokerMessage, `code ${code}`);
      assert.equal(err.command, 'PARTITIONED_METADATA');
      assert.match(err.message, new RegExp(name));
    }
    code = 99;
    const unknown = await rejection(pulsar.partitions(TOPIC));
    assert.ok(unknown instanceof PulsarServerError && unknown.serverError === 'Unrecognized' && !unknown.retriable, String(unknown));
  });

  it('a MESSAGE failing its CRC32C is not delivered: receive rejects with PulsarChecksumError naming it, the next one arrives', async () => {
    const b = await broker((command, c) => {
      if (command.type !== CommandType.FLOW) return false;
      const consumerId = toNumber((command.flow as { consumerId: number }).consumerId);
      const meta = (seq: number) => ({ producerName: 'p', sequenceId: seq, publishTime: Date.now() });
      c.sendMessage(consumerId, 1, meta(1), Buffer.from('corrupted'), { corrupt: true });
      c.sendMessage(consumerId, 2, meta(2), Buffer.from('intact'));
      return true;
    });
    const pulsar = client(b);
    const consumer = await pulsar.subscribe({ topic: TOPIC, subscription: 's' });
    const err = await rejection(consumer.receive());
    assert.ok(err instanceof PulsarChecksumError, `got ${String(err)}`);
    assert.equal(err.messageId, '1:1:-1:-1');
    assert.equal((await consumer.receive()).value?.toString(), 'intact');
    assert.equal(b.connections.length, 1, 'a bad checksum does not cost the connection');
  });

  it('a MESSAGE holding a malformed batch or an unsupported encoding gives typed errors, then normal messages flow', async () => {
    const b = await broker((command, c) => {
      if (command.type !== CommandType.FLOW) return false;
      const consumerId = toNumber((command.flow as { consumerId: number }).consumerId);
      const base = { producerName: 'p', sequenceId: 1, publishTime: Date.now() };
      c.sendMessage(consumerId, 1, { ...base, numMessagesInBatch: 3 }, Buffer.from([0, 0, 0, 50, 1, 2]));
      c.sendMessage(consumerId, 2, { ...base, compression: 1 }, Buffer.from('lz4 bytes'));
      c.sendMessage(consumerId, 3, base, Buffer.from('plain'));
      return true;
    });
    const pulsar = client(b);
    const consumer = await pulsar.subscribe({ topic: TOPIC, subscription: 's' });
    const batch = await rejection(consumer.receive());
    assert.ok(batch instanceof PulsarProtocolError && batch.messageId === '1:1:-1:-1', `got ${String(batch)}`);
    const lz4 = await rejection(consumer.receive());
    assert.ok(lz4 instanceof PulsarUnsupportedError && /LZ4/.test(lz4.message), `got ${String(lz4)}`);
    assert.equal((await consumer.receive()).value?.toString(), 'plain');
  });

  it('reads batched entries from other clients message by message, with batch indexes', async () => {
    const b = await broker((command, c) => {
      if (command.type !== CommandType.FLOW) return false;
      const consumerId = toNumber((command.flow as { consumerId: number }).consumerId);
      const parts = ['a', 'bb', 'ccc'].map((v, i) => {
        const single = Buffer.from(
          // SingleMessageMetadata{ partition_key: 'k<i>', payload_size } as protobuf.
          [0x12, 2, 0x6b, 0x30 + i, 0x18, v.length],
        );
        const size = Buffer.alloc(4);
        size.writeUInt32BE(single.length);
        return Buffer.concat([size, single, Buffer.from(v)]);
      });
      c.sendMessage(consumerId, 7, { producerName: 'java', sequenceId: 10, publishTime: 1, numMessagesInBatch: 3 }, Buffer.concat(parts));
      return true;
    });
    const pulsar = client(b);
    const consumer = await pulsar.subscribe({ topic: TOPIC, subscription: 's' });
    const got = [await consumer.receive(), await consumer.receive(), await consumer.receive()];
    assert.deepEqual(got.map((m) => [m.key, m.value?.toString(), m.messageId.batchIndex, m.messageId.batchSize]), [
      ['k0', 'a', 0, 3],
      ['k1', 'bb', 1, 3],
      ['k2', 'ccc', 2, 3],
    ]);
    // Outside a transaction the entry is acknowledged once all its messages are.
    await consumer.acknowledge(got.slice(0, 2));
    assert.equal(b.bodies(CommandType.ACK).length, 0);
    await consumer.acknowledge(got[2] as (typeof got)[number]);
    const acks = b.bodies<{ messageId: { entryId: unknown }[] }>(CommandType.ACK);
    assert.equal(acks.length, 1);
    assert.equal(toNumber(acks[0]?.messageId[0]?.entryId as number), 7);
  });

  it('a consumer whose connection drops resubscribes with back-off and receives what the broker sends next', async () => {
    let subscribes = 0;
    const b = await broker((command, c) => {
      if (command.type === CommandType.SUBSCRIBE) subscribes += 1;
      if (command.type !== CommandType.FLOW) return false;
      const consumerId = toNumber((command.flow as { consumerId: number }).consumerId);
      if (subscribes === 1) c.socket.destroy();
      else c.sendMessage(consumerId, 1, { producerName: 'p', sequenceId: 1, publishTime: 1 }, Buffer.from('after reconnect'));
      return true;
    });
    const pulsar = client(b);
    const consumer = await pulsar.subscribe({ topic: TOPIC, subscription: 's' });
    assert.equal((await consumer.receive()).value?.toString(), 'after reconnect');
    assert.equal(subscribes, 2);
  });

  it('a subscribed consumer keeps resubscribing through refusals a reconnect can outlive (UnknownError, ServiceNotReady, ConsumerBusy), as the Java client does', async () => {
    // A broker restarting refuses a returning consumer in many words while it loads the topic
    // and its pending acknowledgements; a consumer that gave up on the first would stay silent
    // for good in a process that keeps running.
    const refusals = (['UnknownError', 'ServiceNotReady', 'ConsumerBusy'] as const).map((name) => PULSAR_SERVER_ERROR_NAMES.indexOf(name));
    assert.ok(refusals.every((code) => code >= 0));
    let subscribes = 0;
    const b = await broker((command, c) => {
      if (command.type === CommandType.SUBSCRIBE) {
        subscribes += 1;
        const refusal = refusals[subscribes - 2];
        if (subscribes < 2 || refusal === undefined) return false;
        c.send(CommandType.ERROR, { requestId: (command.subscribe as { requestId: number }).requestId, error: refusal, message: `refused ${subscribes}` });
        return true;
      }
      if (command.type !== CommandType.FLOW) return false;
      const consumerId = toNumber((command.flow as { consumerId: number }).consumerId);
      if (subscribes === 1) c.socket.destroy();
      else c.sendMessage(consumerId, 1, { producerName: 'p', sequenceId: 1, publishTime: 1 }, Buffer.from('after the refusals'));
      return true;
    });
    const pulsar = client(b);
    const consumer = await pulsar.subscribe({ topic: TOPIC, subscription: 's' });
    assert.equal((await consumer.receive()).value?.toString(), 'after the refusals');
    assert.equal(subscribes, 2 + refusals.length);
  });

  it('a subscribed consumer whose topic is gone stops resubscribing: receive rejects with TopicNotFound', async () => {
    let subscribes = 0;
    const b = await broker((command, c) => {
      if (command.type === CommandType.SUBSCRIBE && ++subscribes > 1) {
        const code = PULSAR_SERVER_ERROR_NAMES.indexOf('TopicNotFound');
        c.send(CommandType.ERROR, { requestId: (command.subscribe as { requestId: number }).requestId, error: code, message: 'deleted' });
        return true;
      }
      if (command.type === CommandType.FLOW && subscribes === 1) {
        c.socket.destroy();
        return true;
      }
      return false;
    });
    const pulsar = client(b);
    const consumer = await pulsar.subscribe({ topic: TOPIC, subscription: 's' });
    const err = await consumer.receive().catch((e: unknown) => e);
    assert.ok(err instanceof PulsarServerError && err.serverError === 'TopicNotFound', String(err));
    assert.equal(subscribes, 2);
  });

  it('a producer whose connection drops reconnects and resends the unconfirmed message with its sequence id', async () => {
    let sends = 0;
    const b = await broker((command, c) => {
      if (command.type !== CommandType.SEND) return false;
      sends += 1;
      if (sends === 1) {
        c.socket.destroy(); // The broker "crashes" before confirming.
        return true;
      }
      return false;
    });
    const pulsar = client(b);
    const producer = await pulsar.createProducer({ topic: TOPIC });
    const id = await producer.send({ value: 'once' });
    assert.equal(id.entryId, 0n);
    const seqs = b.bodies<{ sequenceId: number }>(CommandType.SEND).map((s) => toNumber(s.sequenceId));
    assert.deepEqual(seqs, [0, 0], 'the resend reuses the sequence id, so broker deduplication stores it once');
    const producers = b.bodies<{ producerName?: string }>(CommandType.PRODUCER);
    assert.equal(producers[1]?.producerName, 'scripted-producer', 'it reconnects under the name the broker gave it');
  });

  it('sends the messages of one call as one batched entry per partition, with consecutive sequence ids', async () => {
    const b = await broker();
    const pulsar = client(b);
    const producer = await pulsar.createProducer({ topic: TOPIC });
    const ids = await producer.sendAll([{ key: 'a', value: 'one' }, { value: null }, { key: Buffer.from([1, 2]), value: 'three', properties: { p: 'v' } }]);
    const sends = b.bodies<{ sequenceId: number; numMessages: number; highestSequenceId: number }>(CommandType.SEND);
    assert.equal(sends.length, 1);
    assert.deepEqual([toNumber(sends[0]?.sequenceId), sends[0]?.numMessages, toNumber(sends[0]?.highestSequenceId)], [0, 3, 2]);
    assert.deepEqual(ids.map((id) => [id.batchIndex, id.batchSize]), [[0, 3], [1, 3], [2, 3]]);
    // The next call continues the sequence after the batch: what broker deduplication expects.
    await producer.send({ value: 'four' });
    assert.equal(toNumber(b.bodies<{ sequenceId: number }>(CommandType.SEND)[1]?.sequenceId), 3);

    const unbatched = await pulsar.createProducer({ topic: TOPIC, batchingMaxMessages: 1 });
    await unbatched.sendAll([{ value: 'x' }, { value: 'y' }]);
    assert.equal(b.bodies(CommandType.SEND).length, 4, 'batchingMaxMessages: 1 sends one entry per message');
  });

  it('a cluster without transaction coordinators fails begin with a fatal PulsarTransactionsDisabledError', async () => {
    const b = await broker();
    b.partitions.set('persistent://pulsar/system/transaction_coordinator_assign', 0);
    const ctx = pulsarTransactions({ client: client(b) });
    let runs = 0;
    const err = await rejection(ctx.withTransaction(async () => void (runs += 1)));
    assert.ok(err instanceof PulsarTransactionsDisabledError, `got ${String(err)}`);
    assert.equal(err.retriable, false);
    assert.equal(runs, 0);
    await ctx.close();
  });

  it('answers PING with PONG, and drops a broker that stops answering keep-alives', async () => {
    let silent = false;
    const b = await broker((command, c) => {
      if (command.type === CommandType.CONNECT) {
        c.send(CommandType.CONNECTED, { serverVersion: 'scripted', protocolVersion: 19 });
        c.send(CommandType.PING, {});
        return true;
      }
      return silent;
    });
    const pulsar = client(b, { keepAliveIntervalMs: 100 });
    assert.equal(await pulsar.partitions(TOPIC), 0);
    await waitUntil(() => b.received.some((c) => c.type === CommandType.PONG), 5_000, 'the PONG');
    silent = true;
    const connection = await pulsar.connection(undefined, false);
    const closed = new Promise<Error>((resolve) => connection.onClose(resolve));
    const reason = await closed;
    assert.ok(reason instanceof PulsarConnectionError && /keep-alive/.test(reason.message), `got ${String(reason)}`);
  });

  it('follows lookup redirects to the broker that owns the topic, and gives up on a redirect loop', async () => {
    const owner = await broker();
    const entry = await broker();
    entry.lookupAnswer = () => ({ url: owner.url, redirect: true });
    const pulsar = client(entry);
    await pulsar.createProducer({ topic: TOPIC });
    assert.equal(owner.bodies(CommandType.PRODUCER).length, 1, 'the producer lives on the owner');
    assert.equal(entry.bodies(CommandType.PRODUCER).length, 0);

    owner.lookupAnswer = () => ({ url: entry.url, redirect: true });
    const loop = await rejection(client(entry).lookup(TOPIC));
    assert.ok(loop instanceof PulsarProtocolError && /redirected more than/.test(loop.message), `got ${String(loop)}`);
  });

  it('close() fails pending requests with PulsarClosedError and ends the connection', async () => {
    const b = await broker((command) => command.type === CommandType.PARTITIONED_METADATA);
    const pulsar = client(b);
    const pending = rejection(pulsar.partitions(TOPIC));
    await waitUntil(() => b.received.some((c) => c.type === CommandType.PARTITIONED_METADATA), 5_000, 'the request');
    const ended = new Promise<void>((resolve) => (b.connections[0] as { socket: { once(e: string, f: () => void): void } }).socket.once('end', resolve));
    await pulsar.close();
    assert.ok((await pending) instanceof PulsarClosedError);
    await ended;
    assert.ok((await rejection(pulsar.partitions(TOPIC))) instanceof PulsarClosedError);
  });
});

describe('pulsar coordinator errors through the transaction context (scripted broker)', () => {
  it('TransactionCoordinatorNotFound at begin is transient: the unit runs once the coordinator answers', async () => {
    let refusals = 1;
    const b = await broker((command, c) => {
      if (command.type !== CommandType.NEW_TXN || refusals === 0) return false;
      refusals -= 1;
      const requestId = toNumber((command.newTxn as { requestId: number }).requestId);
      c.send(CommandType.NEW_TXN_RESPONSE, { requestId, error: 20, message: 'coordinator loading' });
      return true;
    });
    const ctx = pulsarTransactions({ client: client(b) });
    const attempts: number[] = [];
    await ctx.withTransaction(
      async (tx) => {
        attempts.push(tx.attempt);
        await tx.handle.send({ topic: TOPIC, messages: [{ value: 'v' }] });
      },
      { retry: { initialDelayMs: 1, maxDelayMs: 5 } },
    );
    assert.deepEqual(attempts, [2], 'attempt 1 failed at begin, before the callback');
    const ends = b.bodies<{ txnAction: number }>(CommandType.END_TXN);
    assert.deepEqual(ends.map((e) => e.txnAction), [0], 'one commit');
    await ctx.close();
  });

  it('an unanswered commit is an unknown result: txkit sends END_TXN commit again and the unit does not rerun', async () => {
    let ends = 0;
    const b = await broker((command) => command.type === CommandType.END_TXN && ++ends === 1);
    assert.equal(await runsOfCommitSentTwice(b), 1);
  });

  it('a coordinator out of reach for the commit sent again after an unanswered one keeps the outcome unknown: the unit does not rerun', async () => {
    let ends = 0;
    let connects = 0;
    const b = await broker((command, c) => {
      if (command.type === CommandType.END_TXN && ++ends === 1) {
        c.socket.destroy(); // The connection breaks with the commit unanswered.
        return true;
      }
      if (command.type === CommandType.TC_CLIENT_CONNECT_REQUEST && ++connects === 2) {
        // Reconnecting to send the commit again: the coordinator is not ready yet (a broker restarting, say).
        const requestId = toNumber((command.tcClientConnectRequest as { requestId: number }).requestId);
        c.send(CommandType.TC_CLIENT_CONNECT_RESPONSE, { requestId, error: 6, message: 'coordinator not ready' });
        return true;
      }
      return false;
    });
    assert.equal(await runsOfCommitSentTwice(b), 1, 'a rerun would meet the first attempt, still open at the coordinator');
    assert.ok(connects >= 3, `the coordinator was reached again (${connects} TC_CLIENT_CONNECT)`);
  });

  it('an abort cut before the coordinator got it: the rerun sends it again before beginning, so its acknowledgement meets no open transaction', async () => {
    let ends = 0;
    const b = await broker((command, c) => {
      if (command.type === CommandType.FLOW) {
        const consumerId = toNumber((command.flow as { consumerId: number }).consumerId);
        c.sendMessage(consumerId, 1, { producerName: 'p', sequenceId: 1, publishTime: Date.now() }, Buffer.from('in'));
        return true;
      }
      if (command.type === CommandType.END_TXN && ++ends === 1) {
        c.socket.destroy(); // The first attempt's abort never reaches the coordinator.
        return true;
      }
      return false;
    });
    b.pendingAcks = true; // The first attempt's acknowledgement stays pending while its transaction is open.
    const pulsar = client(b, { operationTimeoutMs: 500 });
    const consumer = await pulsar.subscribe({ topic: TOPIC, subscription: 's', subscriptionType: 'Shared' });
    const message = await consumer.receive();
    const ctx = pulsarTransactions({ client: pulsar });
    const attempts: string[] = [];
    await ctx.withTransaction(
      async (tx) => {
        attempts.push(tx.handle.transactionId);
        await tx.handle.acknowledge(consumer, message);
        await tx.handle.send({ topic: TOPIC, messages: [{ value: 'out' }] });
        if (attempts.length === 1) throw new TransientTransactionError('the first attempt fails after acknowledging', { backend: 'pulsar' });
      },
      { retry: { deadlineMs: 10_000, initialDelayMs: 1, maxDelayMs: 20 } },
    );
    const first = attempts[0] as string;
    const last = attempts.at(-1) as string;
    assert.notEqual(first, last);
    const order = b.received
      .filter((c) => c.type === CommandType.END_TXN || c.type === CommandType.NEW_TXN)
      .map((c) => {
        if (c.type === CommandType.NEW_TXN) return 'new';
        const e = c.endTxn as { txnAction: number; txnidMostBits: number; txnidLeastBits: number };
        return `${e.txnAction === 0 ? 'commit' : 'abort'} (${toNumber(e.txnidMostBits)},${toNumber(e.txnidLeastBits)})`;
      });
    assert.deepEqual(order.slice(0, 3), ['new', `abort ${first}`, `abort ${first}`], 'the abort is sent again before the next transaction begins');
    assert.equal(order.at(-1), `commit ${last}`);
    await ctx.close();
  });

  it('a commit sent again after an unanswered one that finds it COMMITTED is committed: no error, no rerun', async () => {
    let ends = 0;
    const b = await broker((command, c) => {
      if (command.type !== CommandType.END_TXN) return false;
      if (++ends === 1) return true; // Committed, the answer lost.
      const requestId = toNumber((command.endTxn as { requestId: number }).requestId);
      const message = 'Expect Txn `(0,1)` to be in COMMITTING status but it is in COMMITTED status';
      c.send(CommandType.END_TXN_RESPONSE, { requestId, error: PULSAR_SERVER_ERROR_NAMES.indexOf('InvalidTxnStatus'), message });
      return true;
    });
    assert.equal(await runsOfCommitSentTwice(b), 1);
  });

  it('TransactionNotFound after an unanswered commit cannot tell committed from timed out: it stays unknown until the deadline', async () => {
    let ends = 0;
    const b = await broker((command, c) => {
      if (command.type !== CommandType.END_TXN) return false;
      ends += 1;
      if (ends === 1) return true; // No answer.
      const requestId = toNumber((command.endTxn as { requestId: number }).requestId);
      c.send(CommandType.END_TXN_RESPONSE, { requestId, error: 24, message: 'not found' });
      return true;
    });
    const ctx = pulsarTransactions({ client: client(b, { operationTimeoutMs: 300 }) });
    let runs = 0;
    const err = await rejection(
      ctx.withTransaction(
        async (tx) => {
          runs += 1;
          await tx.handle.send({ topic: TOPIC, messages: [{ value: 'v' }] });
        },
        { retry: { deadlineMs: 1_500, initialDelayMs: 20, maxDelayMs: 50 } },
      ),
    );
    assert.ok(err instanceof TransactionTimeoutError, `got ${String(err)}`);
    assert.ok(err.cause instanceof UnknownCommitResultError);
    assert.equal(runs, 1, 'a commit of unknown outcome never reruns the unit');
    assert.ok(ends >= 2);
    await ctx.close();
  });
});

describe('pulsar frame decoder', () => {
  it('turns any byte stream into frames or a PulsarProtocolError, never another exception', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
        const decoder = new FrameDecoder(1024);
        try {
          for (const chunk of chunks) decoder.push(Buffer.from(chunk));
        } catch (err) {
          assert.ok(err instanceof PulsarProtocolError, `unexpected ${String(err)}`);
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it('decodes valid frames split at every byte boundary', () => {
    const frames = [
      encodeCommand(CommandType.PING, {}),
      encodeCommand(CommandType.SUCCESS, { requestId: 7 }),
      encodeCommand(CommandType.ERROR, { requestId: 8, error: 23, message: 'conflict' }),
    ];
    const stream = Buffer.concat(frames);
    for (let cut = 1; cut < stream.length; cut++) {
      const decoder = new FrameDecoder();
      const got = [...decoder.push(stream.subarray(0, cut)), ...decoder.push(stream.subarray(cut))];
      assert.deepEqual(got.map((f) => f.command.type), [CommandType.PING, CommandType.SUCCESS, CommandType.ERROR]);
      assert.equal(decoder.buffered, 0);
    }
  });
});
