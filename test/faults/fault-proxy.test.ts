/**
 * The fault proxy itself, against a loopback echo server: frames split at
 * their boundaries whatever the chunking, and each action does what it says
 * (delay keeps order, stall holds until release, cut closes, corrupt
 * mutates, observe only counts).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { FaultProxy, kafkaExchange, kafkaRequest, postgresCommit, pulsarCommand } from './support/fault-proxy.js';
import { waitUntil } from './support/fault-report.js';

/** A length-prefixed frame: 4-byte size, then the body. */
const frame = (body: string): Buffer => {
  const b = Buffer.from(body);
  const size = Buffer.alloc(4);
  size.writeUInt32BE(b.length);
  return Buffer.concat([size, b]);
};

describe('FaultProxy', () => {
  let echo: net.Server;
  let proxy: FaultProxy;
  beforeAll(async () => {
    echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    proxy = new FaultProxy({ target: { host: '127.0.0.1', port: (echo.address() as net.AddressInfo).port }, framing: 'length-prefixed' });
    await proxy.start();
  });
  afterAll(async () => {
    await proxy.close();
    await new Promise((resolve) => echo.close(resolve));
  });

  /** A client that collects everything echoed back. */
  async function connect(): Promise<{ socket: net.Socket; received: () => Buffer; closed: () => boolean }> {
    const socket = net.connect(proxy.address);
    await new Promise((resolve) => socket.once('connect', resolve));
    let data = Buffer.alloc(0);
    let closed = false;
    socket.on('data', (chunk: Buffer) => (data = Buffer.concat([data, chunk])));
    socket.on('close', () => (closed = true));
    socket.on('error', () => undefined);
    return { socket, received: () => data, closed: () => closed };
  }

  it('passes frames through unchanged, split across chunks or several in one', async () => {
    const c = await connect();
    const all = Buffer.concat([frame('one'), frame('two'), frame('three')]);
    c.socket.write(all.subarray(0, 5));
    c.socket.write(all.subarray(5, 13));
    c.socket.write(all.subarray(13));
    await waitUntil('the echo', () => c.received().length === all.length, 5_000);
    assert.deepEqual(c.received(), all);
    c.socket.destroy();
  });

  it('delay keeps order; stall holds the frame and those behind it until release; observe only counts', async () => {
    const seen = proxy.addRule({ direction: 'to-server', match: () => true, action: { kind: 'observe' }, times: 100 });
    const delay = proxy.addRule({ direction: 'to-server', match: (f) => f.includes('slow'), action: { kind: 'delay', ms: 50 } });
    const stall = proxy.addRule({ direction: 'to-client', match: (f) => f.includes('held'), action: { kind: 'stall' } });
    const c = await connect();
    c.socket.write(Buffer.concat([frame('slow'), frame('fast'), frame('held'), frame('after')]));
    await stall.hit;
    await waitUntil('the frames before the stall', () => c.received().length === frame('slow').length + frame('fast').length, 5_000);
    assert.deepEqual(c.received(), Buffer.concat([frame('slow'), frame('fast')]), 'delayed frame first, stalled ones not yet');
    stall.release();
    await waitUntil('the released frames', () => c.received().length === 4 * 4 + 4 + 4 + 4 + 5, 5_000);
    assert.deepEqual(c.received(), Buffer.concat([frame('slow'), frame('fast'), frame('held'), frame('after')]));
    assert.equal(delay.hits, 1);
    assert.equal(seen.hits, 4, 'the observer saw every frame, also those other rules acted on');
    seen.retire();
    c.socket.destroy();
  });

  it('cut closes the connection at the frame; corrupt changes it', async () => {
    const corrupt = proxy.addRule({ direction: 'to-server', match: (f) => f.includes('bad'), action: { kind: 'corrupt', mutate: () => frame('BAD') } });
    const c1 = await connect();
    c1.socket.write(frame('bad'));
    await waitUntil('the corrupted echo', () => c1.received().length === 7, 5_000);
    assert.deepEqual(c1.received(), frame('BAD'));
    assert.equal(corrupt.hits, 1);
    c1.socket.destroy();

    const cut = proxy.addRule({ direction: 'to-server', match: (f) => f.includes('cut'), action: { kind: 'cut' } });
    const c2 = await connect();
    c2.socket.write(Buffer.concat([frame('ok'), frame('cut'), frame('never')]));
    await waitUntil('the connection to close', () => c2.closed(), 5_000);
    assert.ok(!c2.received().includes('never'), 'nothing after the cut got through');
    assert.equal(cut.connections.length, 1);
  });

  it('protocol predicates pick out Kafka EndTxn and its answer, Pulsar END_TXN, Postgres COMMIT', () => {
    const kafka = Buffer.alloc(14);
    kafka.writeInt32BE(10, 0);
    kafka.writeInt16BE(26, 4); // EndTxn
    kafka.writeInt32BE(77, 8); // correlation id
    const answer = Buffer.alloc(8);
    answer.writeInt32BE(4, 0);
    answer.writeInt32BE(77, 4);
    const exchange = kafkaExchange(26);
    assert.ok(kafkaRequest(26)(kafka) && !kafkaRequest(0)(kafka));
    assert.ok(!exchange.response(answer, { connection: 1, direction: 'to-client' }), 'no answer before its request');
    assert.ok(exchange.request(kafka, { connection: 1, direction: 'to-server' }));
    assert.ok(exchange.response(answer, { connection: 1, direction: 'to-client' }));
    const pulsar = Buffer.from([0, 0, 0, 6, 0, 0, 0, 2, 0x08, 56]);
    assert.ok(pulsarCommand(56)(pulsar) && !pulsarCommand(50)(pulsar));
    const query = (sql: string): Buffer => {
      const body = Buffer.from(`${sql}\0`);
      const head = Buffer.alloc(5);
      head.write('Q');
      head.writeInt32BE(4 + body.length, 1);
      return Buffer.concat([head, body]);
    };
    assert.ok(postgresCommit(query('COMMIT')) && !postgresCommit(query('SELECT 1')));
  });
});
