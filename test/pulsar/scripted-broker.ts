/**
 * A fake Pulsar broker on loopback for protocol tests: it answers the commands txkit
 * sends with well-formed defaults, and a test's script can answer any command itself
 * (with an error, garbage, silence, a close...). It speaks through txkit's own frame
 * codec, so what it sends is exactly what a broker could send, byte for byte.
 */
import net from 'node:net';
import tls from 'node:tls';
import { COMMAND_FIELD, CommandType, toNumber } from '../../src/pulsar-client/wire/commands.js';
import type { BaseCommand } from '../../src/pulsar-client/wire/commands.js';
import { FrameDecoder, encodeCommand, encodePayloadCommand } from '../../src/pulsar-client/wire/frames.js';
import { PULSAR_SERVER_ERROR_NAMES } from '../../src/adapters/pulsar/pulsar-errors.js';

export interface ScriptedConnection {
  readonly socket: net.Socket;
  send(type: number, body: object): void;
  sendRaw(bytes: Buffer): void;
  /** A MESSAGE frame to `consumerId`; `corrupt` flips a payload byte after the checksum is computed. */
  sendMessage(consumerId: number, entryId: number, metadata: object, payload: Buffer, options?: { corrupt?: boolean }): void;
}

/** Answers a command itself (return true) or leaves it to the defaults (return false/undefined). */
export type Script = (command: BaseCommand, connection: ScriptedConnection) => boolean | undefined | void;

export class ScriptedBroker {
  readonly received: BaseCommand[] = [];
  readonly connections: ScriptedConnection[] = [];
  /** Partition counts by topic (default 0); the coordinator topic has 1. */
  readonly partitions = new Map<string, number>([['persistent://pulsar/system/transaction_coordinator_assign', 1]]);
  script: Script | undefined;
  /** Where LOOKUP points (default: this broker). */
  lookupAnswer: ((topic: string) => { url: string; redirect: boolean }) | undefined;
  /**
   * Keep acknowledgements made in a transaction pending until its END_TXN, as a broker
   * does: an ACK in another transaction of a message pending in one is refused with
   * TransactionConflict. Off by default.
   */
  pendingAcks = false;
  /** Message (`ledger:entry`) -> the transaction (least bits) holding its pending acknowledgement. */
  readonly #pendingAck = new Map<string, number>();
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #txn = 0;
  #port = 0;

  readonly #tls: boolean;

  private constructor(script: Script | undefined, tlsOptions: tls.TlsOptions | undefined) {
    this.script = script;
    this.#tls = tlsOptions !== undefined;
    this.#server =
      tlsOptions === undefined ? net.createServer((socket) => this.#accept(socket)) : tls.createServer(tlsOptions, (socket) => this.#accept(socket));
    // A TLS handshake the client refuses (an untrusted certificate) is the test's point, not an error of the broker.
    this.#server.on('tlsClientError', () => undefined);
  }

  /** Starts on a free loopback port; with `options.tls` (key, cert, ca, requestCert...) it speaks TLS, as `pulsar+ssl://`. */
  static async start(script?: Script, options: { tls?: tls.TlsOptions } = {}): Promise<ScriptedBroker> {
    const broker = new ScriptedBroker(script, options.tls);
    await new Promise<void>((resolve, reject) => {
      broker.#server.once('error', reject);
      broker.#server.listen(0, '127.0.0.1', () => resolve());
    });
    broker.#port = (broker.#server.address() as net.AddressInfo).port;
    return broker;
  }

  get url(): string {
    return `${this.#tls ? 'pulsar+ssl' : 'pulsar'}://127.0.0.1:${this.#port}`;
  }

  /** Commands of one type received so far, with their bodies. */
  bodies<T = Record<string, unknown>>(type: number): T[] {
    const field = bodyField(type);
    return this.received.filter((c) => c.type === type).map((c) => c[field] as T);
  }

  /** Ends every open connection as a crashing broker would (RST). */
  dropConnections(): void {
    for (const socket of this.#sockets) socket.destroy();
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => undefined);
    const decoder = new FrameDecoder();
    const connection: ScriptedConnection = {
      socket,
      send: (type, body) => {
        if (!socket.destroyed) socket.write(encodeCommand(type, body));
      },
      sendRaw: (bytes) => {
        if (!socket.destroyed) socket.write(bytes);
      },
      sendMessage: (consumerId, entryId, metadata, payload, options = {}) => {
        const frame = encodePayloadCommand(CommandType.MESSAGE, { consumerId, messageId: { ledgerId: 1, entryId } }, metadata, payload);
        if (options.corrupt === true) frame.writeUInt8((frame.at(-1) as number) ^ 0xff, frame.length - 1);
        if (!socket.destroyed) socket.write(frame);
      },
    };
    this.connections.push(connection);
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        this.received.push(frame.command);
        if (this.script?.(frame.command, connection) === true) continue;
        this.#answer(frame.command, connection);
      }
    });
  }

  /** With pendingAcks: records a transactional ACK's messages, or names one another transaction holds. */
  #holdPendingAcks(body: AckBody): string | undefined {
    if (!this.pendingAcks || body.txnidLeastBits === undefined) return undefined;
    const txn = toNumber(body.txnidLeastBits as number);
    const messages = (body.messageId ?? []).map((m) => `${toNumber(m.ledgerId as number)}:${toNumber(m.entryId as number)}`);
    const taken = messages.find((m) => this.#pendingAck.has(m) && this.#pendingAck.get(m) !== txn);
    if (taken !== undefined) return taken;
    for (const m of messages) this.#pendingAck.set(m, txn);
    return undefined;
  }

  #answer(command: BaseCommand, c: ScriptedConnection): void {
    const body = command[bodyField(command.type)] as Record<string, unknown> & { requestId?: unknown };
    const requestId = toNumber(body?.requestId as number | undefined);
    switch (command.type) {
      case CommandType.CONNECT:
        return c.send(CommandType.CONNECTED, { serverVersion: 'scripted', protocolVersion: 19 });
      case CommandType.PING:
        return c.send(CommandType.PONG, {});
      case CommandType.PARTITIONED_METADATA:
        return c.send(CommandType.PARTITIONED_METADATA_RESPONSE, {
          requestId,
          response: 0,
          partitions: this.partitions.get(body.topic as string) ?? 0,
        });
      case CommandType.LOOKUP: {
        const answer = this.lookupAnswer?.(body.topic as string) ?? { url: this.url, redirect: false };
        const url = this.#tls ? { brokerServiceUrlTls: answer.url } : { brokerServiceUrl: answer.url };
        return c.send(CommandType.LOOKUP_RESPONSE, { requestId, ...url, response: answer.redirect ? 0 : 1 });
      }
      case CommandType.PRODUCER:
        return c.send(CommandType.PRODUCER_SUCCESS, { requestId, producerName: 'scripted-producer', lastSequenceId: -1 });
      case CommandType.SEND: {
        const send = body as { producerId: unknown; sequenceId: unknown };
        const sequenceId = toNumber(send.sequenceId as number);
        return c.send(CommandType.SEND_RECEIPT, {
          producerId: toNumber(send.producerId as number),
          sequenceId,
          messageId: { ledgerId: 1, entryId: sequenceId },
        });
      }
      case CommandType.SUBSCRIBE:
      case CommandType.CLOSE_PRODUCER:
      case CommandType.CLOSE_CONSUMER:
        return c.send(CommandType.SUCCESS, { requestId });
      case CommandType.ACK: {
        const consumerId = toNumber(body.consumerId as number);
        const conflict = this.#holdPendingAcks(body as AckBody);
        if (conflict !== undefined) {
          const error = PULSAR_SERVER_ERROR_NAMES.indexOf('TransactionConflict');
          return c.send(CommandType.ACK_RESPONSE, { consumerId, requestId, error, message: `message ${conflict} is in pending ack status` });
        }
        if (body.requestId !== undefined) c.send(CommandType.ACK_RESPONSE, { consumerId, requestId });
        return;
      }
      case CommandType.TC_CLIENT_CONNECT_REQUEST:
        return c.send(CommandType.TC_CLIENT_CONNECT_RESPONSE, { requestId });
      case CommandType.NEW_TXN:
        return c.send(CommandType.NEW_TXN_RESPONSE, { requestId, txnidMostBits: 0, txnidLeastBits: ++this.#txn });
      case CommandType.ADD_PARTITION_TO_TXN:
        return c.send(CommandType.ADD_PARTITION_TO_TXN_RESPONSE, { requestId });
      case CommandType.ADD_SUBSCRIPTION_TO_TXN:
        return c.send(CommandType.ADD_SUBSCRIPTION_TO_TXN_RESPONSE, { requestId });
      case CommandType.END_TXN: {
        const txn = toNumber(body.txnidLeastBits as number);
        for (const [message, holder] of this.#pendingAck) if (holder === txn) this.#pendingAck.delete(message);
        return c.send(CommandType.END_TXN_RESPONSE, { requestId });
      }
      default:
        return;
    }
  }
}

type AckBody = { txnidLeastBits?: unknown; messageId?: { ledgerId: unknown; entryId: unknown }[] };

function bodyField(type: number): string {
  return COMMAND_FIELD[type] ?? 'ping';
}
