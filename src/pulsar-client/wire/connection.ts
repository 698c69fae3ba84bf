/**
 * One TCP connection to one broker: the CONNECT handshake, request/response matching
 * by request id, routing of receipts and messages to the producers and consumers
 * registered on it, keep-alive (PING/PONG), timeouts, and a clean or failed close.
 * A connection never reconnects itself: its owners (producers, consumers, the
 * transaction coordinator client) do, with back-off, when it ends.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { PulsarAuthentication } from '../authentication.js';
import type { PulsarTlsOptions } from '../client-options.js';
import {
  PulsarClientError,
  PulsarClosedError,
  PulsarConnectionError,
  PulsarProtocolError,
  PulsarServerError,
  PulsarTimeoutError,
  PulsarUnsupportedError,
} from '../errors.js';
import { CommandType, PROTOCOL_VERSION, commandName, has, toNumber } from './commands.js';
import type {
  BaseCommand,
  CloseBody,
  ConnectedBody,
  MessageBody,
  ResponseBody,
  SendErrorBody,
  SendReceiptBody,
} from './commands.js';
import { DEFAULT_MAX_FRAME_SIZE, FrameDecoder, encodeCommand } from './frames.js';
import type { Frame } from './frames.js';

export interface ConnectionOptions {
  host: string;
  port: number;
  /** Set when connecting through a proxy (the service URL) to reach this broker. */
  proxyToBrokerUrl?: string | undefined;
  connectTimeoutMs: number;
  operationTimeoutMs: number;
  keepAliveIntervalMs: number;
  clientVersion: string;
  /** Set for a TLS connection (a `pulsar+ssl://` client). */
  tls?: PulsarTlsOptions | undefined;
  /** Credentials sent in CONNECT and on the broker's AUTH_CHALLENGE. */
  authentication?: PulsarAuthentication | undefined;
}

/** What a producer registered on a connection hears. */
export interface ProducerListener {
  onReceipt(body: SendReceiptBody): void;
  onSendError(body: SendErrorBody): void;
  /** The broker closed the producer (topic unloaded, moved...), or the connection ended. */
  onDisconnect(reason: Error): void;
}

/** What a consumer registered on a connection hears. */
export interface ConsumerListener {
  onMessage(body: MessageBody, frame: Frame): void;
  onDisconnect(reason: Error): void;
}

/** Responses routed by request id, and the field of each that may carry a ServerError. */
const RESPONSES: ReadonlySet<number> = new Set([
  CommandType.SUCCESS,
  CommandType.ERROR,
  CommandType.PRODUCER_SUCCESS,
  CommandType.LOOKUP_RESPONSE,
  CommandType.PARTITIONED_METADATA_RESPONSE,
  CommandType.ACK_RESPONSE,
  CommandType.GET_LAST_MESSAGE_ID_RESPONSE,
  CommandType.NEW_TXN_RESPONSE,
  CommandType.ADD_PARTITION_TO_TXN_RESPONSE,
  CommandType.ADD_SUBSCRIPTION_TO_TXN_RESPONSE,
  CommandType.END_TXN_RESPONSE,
  CommandType.TC_CLIENT_CONNECT_RESPONSE,
]);

interface Handshake {
  resolve(): void;
  reject(err: Error): void;
}

interface PendingRequest {
  readonly command: string;
  resolve(body: ResponseBody): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

export class PulsarConnection {
  /** `host:port` of the TCP peer. */
  readonly remote: string;
  serverVersion = '';
  protocolVersion = 0;
  maxMessageSize = 5 * 1024 * 1024;

  readonly #options: ConnectionOptions;
  #socket: net.Socket;
  readonly #decoder = new FrameDecoder(DEFAULT_MAX_FRAME_SIZE);
  readonly #pending = new Map<number, PendingRequest>();
  readonly #producers = new Map<number, ProducerListener>();
  readonly #consumers = new Map<number, ConsumerListener>();
  readonly #closeListeners = new Set<(reason: Error) => void>();
  #nextRequestId = 1;
  #lastReceived = Date.now();
  #keepAlive: ReturnType<typeof setInterval> | undefined;
  #ended: Error | undefined;
  #handshake: Handshake | undefined;

  private constructor(options: ConnectionOptions) {
    this.#options = options;
    this.remote = `${options.host}:${options.port}`;
    this.#socket = new net.Socket();
  }

  /** Opens a TCP connection and completes the CONNECT / CONNECTED handshake. */
  static async open(options: ConnectionOptions): Promise<PulsarConnection> {
    const connection = new PulsarConnection(options);
    await connection.#start();
    return connection;
  }

  /** The connection has ended (cleanly or not). */
  get ended(): boolean {
    return this.#ended !== undefined;
  }

  /** Calls `fn` once when the connection ends; at once if it already has. */
  onClose(fn: (reason: Error) => void): void {
    if (this.#ended !== undefined) fn(this.#ended);
    else this.#closeListeners.add(fn);
  }

  /**
   * Sends a request and resolves with its response body. A ServerError in the response
   * rejects with PulsarServerError; no answer within the timeout rejects with PulsarTimeoutError.
   */
  request<T extends ResponseBody = ResponseBody>(
    type: number,
    body: Record<string, unknown>,
    options: { timeoutMs?: number } = {},
  ): Promise<T> {
    if (this.#ended !== undefined) return Promise.reject(this.#ended);
    const requestId = this.#nextRequestId++;
    const command = commandName(type);
    const timeoutMs = options.timeoutMs ?? this.#options.operationTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(requestId);
        reject(new PulsarTimeoutError(`${command} to ${this.remote}`, timeoutMs));
      }, timeoutMs);
      this.#pending.set(requestId, { command, resolve: resolve as (b: ResponseBody) => void, reject, timer });
      try {
        this.#socket.write(encodeCommand(type, { ...body, requestId }));
      } catch (err) {
        clearTimeout(timer);
        this.#pending.delete(requestId);
        reject(err instanceof Error ? err : new PulsarProtocolError(String(err)));
      }
    });
  }

  /** Writes a command that has no response (FLOW, REDELIVER, PONG...) or whose answer is routed elsewhere (SEND). */
  write(frame: Buffer): void {
    if (this.#ended !== undefined) throw this.#ended;
    this.#socket.write(frame);
  }

  /** Writes many frames in one syscall where the socket allows it. */
  writeMany(frames: readonly Buffer[]): void {
    if (this.#ended !== undefined) throw this.#ended;
    this.#socket.cork();
    try {
      for (const frame of frames) this.#socket.write(frame);
    } finally {
      this.#socket.uncork();
    }
  }

  registerProducer(producerId: number, listener: ProducerListener): void {
    if (this.#ended !== undefined) throw this.#ended;
    this.#producers.set(producerId, listener);
  }

  unregisterProducer(producerId: number, listener: ProducerListener): void {
    if (this.#producers.get(producerId) === listener) this.#producers.delete(producerId);
  }

  registerConsumer(consumerId: number, listener: ConsumerListener): void {
    if (this.#ended !== undefined) throw this.#ended;
    this.#consumers.set(consumerId, listener);
  }

  unregisterConsumer(consumerId: number, listener: ConsumerListener): void {
    if (this.#consumers.get(consumerId) === listener) this.#consumers.delete(consumerId);
  }

  /** Closes cleanly: pending requests fail with PulsarClosedError, the socket is ended. Idempotent. */
  async close(): Promise<void> {
    if (this.#ended !== undefined) return;
    const socket = this.#socket;
    this.#end(new PulsarClosedError(`connection to ${this.remote}`));
    if (socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => socket.destroy(), 1_000);
      timer.unref();
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.end();
    });
  }

  /** Ends the connection because of `reason`; everything waiting on it fails with it. */
  destroy(reason: Error): void {
    if (this.#ended !== undefined) return;
    this.#end(reason);
    this.#socket.destroy();
  }

  // -------------------------------------------------------------------------

  async #start(): Promise<void> {
    const { connectTimeoutMs, authentication } = this.#options;
    // The credentials first (an OAuth2 token may take a request), within the connect timeout.
    const credentials = authentication === undefined ? undefined : await this.#credentials(authentication, connectTimeoutMs);
    return this.#handshakeWith(credentials);
  }

  /** The authentication's current credentials, bounded by `timeoutMs`. */
  async #credentials(authentication: PulsarAuthentication, timeoutMs: number): Promise<Buffer> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        authentication.data(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new PulsarTimeoutError(`getting the ${authentication.method} credentials for ${this.remote}`, timeoutMs)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  #handshakeWith(credentials: Buffer | undefined): Promise<void> {
    const { host, port, connectTimeoutMs, tls: tlsOptions, authentication } = this.#options;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => this.destroy(new PulsarTimeoutError(`CONNECT to ${this.remote}`, connectTimeoutMs)),
        connectTimeoutMs,
      );
      this.#handshake = {
        resolve: () => {
          clearTimeout(timer);
          this.#handshake = undefined;
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          this.#handshake = undefined;
          reject(err);
        },
      };
      if (tlsOptions !== undefined) this.#socket = tlsSocket(host, port, tlsOptions);
      const socket = this.#socket;
      socket.setNoDelay(true);
      socket.on('data', (chunk: Buffer) => this.#onData(chunk));
      socket.on('error', (err) =>
        this.destroy(new PulsarConnectionError(`Pulsar connection to ${this.remote} failed: ${err.message}`, { cause: err })),
      );
      socket.on('close', () => this.destroy(new PulsarConnectionError(`Pulsar broker at ${this.remote} closed the connection`)));
      socket.once(tlsOptions === undefined ? 'connect' : 'secureConnect', () => {
        const connect: Record<string, unknown> = {
          clientVersion: this.#options.clientVersion,
          protocolVersion: PROTOCOL_VERSION,
          featureFlags: { supportsAuthRefresh: authentication !== undefined, supportsBrokerEntryMetadata: false },
        };
        if (authentication !== undefined && credentials !== undefined) {
          connect.authMethodName = authentication.method;
          connect.authData = credentials;
        }
        if (this.#options.proxyToBrokerUrl !== undefined) connect.proxyToBrokerUrl = this.#options.proxyToBrokerUrl;
        socket.write(encodeCommand(CommandType.CONNECT, connect));
      });
      if (tlsOptions === undefined) socket.connect({ host, port });
    });
  }

  /** Answers the broker's AUTH_CHALLENGE (fresh credentials, e.g. for an expired token) with AUTH_RESPONSE. */
  #onAuthChallenge(command: BaseCommand): void {
    const authentication = this.#options.authentication;
    if (authentication === undefined) {
      throw new PulsarUnsupportedError(`the broker at ${this.remote} asks for authentication: give the client authentication (tokenAuthentication or oauth2Authentication)`);
    }
    const protocolVersion = (command.authChallenge as { protocolVersion?: number } | undefined)?.protocolVersion ?? PROTOCOL_VERSION;
    void this.#credentials(authentication, this.#options.operationTimeoutMs).then(
      (data) => {
        if (this.#ended !== undefined) return;
        this.#socket.write(
          encodeCommand(CommandType.AUTH_RESPONSE, {
            clientVersion: this.#options.clientVersion,
            protocolVersion,
            response: { authMethodName: authentication.method, authData: data },
          }),
        );
      },
      (err: unknown) =>
        this.destroy(new PulsarConnectionError(`cannot refresh the ${authentication.method} credentials the broker at ${this.remote} asked for: ${(err as Error).message}`, { cause: err })),
    );
  }

  #onData(chunk: Buffer): void {
    this.#lastReceived = Date.now();
    let frames: Frame[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (err) {
      this.destroy(err instanceof Error ? err : new PulsarProtocolError(String(err)));
      return;
    }
    for (const frame of frames) {
      if (this.#ended !== undefined) return;
      try {
        this.#dispatch(frame);
      } catch (err) {
        // A frame that decodes but makes no sense (a response to nothing we asked, a MESSAGE with a bad body...).
        this.destroy(err instanceof PulsarClientError ? err : new PulsarProtocolError(`cannot handle a frame: ${String(err)}`, { cause: err }));
        return;
      }
    }
  }

  #dispatch(frame: Frame): void {
    const { command } = frame;
    const type = command.type;
    if (this.#handshake !== undefined) return this.#onHandshake(command);
    if (RESPONSES.has(type)) return this.#onResponse(type, command);
    switch (type) {
      case CommandType.PING:
        this.#socket.write(encodeCommand(CommandType.PONG, {}));
        return;
      case CommandType.PONG:
        return;
      case CommandType.AUTH_CHALLENGE:
        return this.#onAuthChallenge(command);
      case CommandType.SEND_RECEIPT: {
        const body = command.sendReceipt as SendReceiptBody;
        this.#producers.get(toNumber(body.producerId))?.onReceipt(body);
        return;
      }
      case CommandType.SEND_ERROR: {
        const body = command.sendError as SendErrorBody;
        this.#producers.get(toNumber(body.producerId))?.onSendError(body);
        return;
      }
      case CommandType.MESSAGE: {
        const body = command.message as MessageBody;
        if (frame.metadata === undefined) throw new PulsarProtocolError('MESSAGE arrived without message metadata and payload');
        this.#consumers.get(toNumber(body.consumerId))?.onMessage(body, frame);
        return;
      }
      case CommandType.CLOSE_PRODUCER: {
        const id = toNumber((command.closeProducer as CloseBody).producerId);
        const listener = this.#producers.get(id);
        this.#producers.delete(id);
        listener?.onDisconnect(new PulsarConnectionError(`the Pulsar broker at ${this.remote} closed producer ${id} (topic unloaded or moved)`));
        return;
      }
      case CommandType.CLOSE_CONSUMER: {
        const id = toNumber((command.closeConsumer as CloseBody).consumerId);
        const listener = this.#consumers.get(id);
        this.#consumers.delete(id);
        listener?.onDisconnect(new PulsarConnectionError(`the Pulsar broker at ${this.remote} closed consumer ${id} (topic unloaded or moved)`));
        return;
      }
      default:
        // ACTIVE_CONSUMER_CHANGE, REACHED_END_OF_TOPIC, TOPIC_MIGRATED and commands newer than ours: nothing to do.
        return;
    }
  }

  #onHandshake(command: BaseCommand): void {
    const handshake = this.#handshake as Handshake;
    if (command.type === CommandType.CONNECTED) {
      const body = command.connected as ConnectedBody;
      this.serverVersion = body.serverVersion;
      this.protocolVersion = body.protocolVersion ?? 0;
      if (has(body, 'maxMessageSize') && body.maxMessageSize !== undefined && body.maxMessageSize > 0) {
        this.maxMessageSize = body.maxMessageSize;
        this.#decoder.maxFrameSize = Math.max(DEFAULT_MAX_FRAME_SIZE, body.maxMessageSize + 10 * 1024);
      }
      this.#startKeepAlive();
      handshake.resolve();
      return;
    }
    if (command.type === CommandType.ERROR) {
      const body = command.error as ResponseBody;
      throw new PulsarServerError(body.error ?? 0, body.message ?? '', 'CONNECT');
    }
    if (command.type === CommandType.AUTH_CHALLENGE) return this.#onAuthChallenge(command);
    throw new PulsarProtocolError(`expected CONNECTED from ${this.remote}, got ${commandName(command.type)}`);
  }

  #onResponse(type: number, command: BaseCommand): void {
    const body = command[fieldOfResponse(type)] as ResponseBody;
    const requestId = toNumber(body.requestId);
    const pending = this.#pending.get(requestId);
    // A response to a request that already timed out: nothing waits for it any more.
    if (pending === undefined) return;
    if (type === CommandType.PRODUCER_SUCCESS && (body as { producerReady?: boolean }).producerReady === false) {
      return; // The broker answers again once the producer is ready (exclusive access modes).
    }
    this.#pending.delete(requestId);
    clearTimeout(pending.timer);
    if (type === CommandType.ERROR || has(body, 'error')) {
      pending.reject(new PulsarServerError(body.error ?? 0, body.message ?? '', pending.command));
      return;
    }
    pending.resolve(body);
  }

  #startKeepAlive(): void {
    const interval = this.#options.keepAliveIntervalMs;
    this.#keepAlive = setInterval(() => {
      if (Date.now() - this.#lastReceived > 2 * interval) {
        this.destroy(new PulsarConnectionError(`the Pulsar broker at ${this.remote} stopped answering keep-alive pings`));
        return;
      }
      if (!this.#socket.destroyed) this.#socket.write(encodeCommand(CommandType.PING, {}));
    }, interval);
    this.#keepAlive.unref();
  }

  #end(reason: Error): void {
    this.#ended = reason;
    if (this.#keepAlive !== undefined) clearInterval(this.#keepAlive);
    this.#handshake?.reject(reason);
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(reason);
    }
    this.#pending.clear();
    const producers = [...this.#producers.values()];
    const consumers = [...this.#consumers.values()];
    this.#producers.clear();
    this.#consumers.clear();
    for (const p of producers) p.onDisconnect(reason);
    for (const c of consumers) c.onDisconnect(reason);
    for (const fn of this.#closeListeners) fn(reason);
    this.#closeListeners.clear();
  }
}

function fieldOfResponse(type: number): string {
  switch (type) {
    case CommandType.SUCCESS:
      return 'success';
    case CommandType.ERROR:
      return 'error';
    case CommandType.PRODUCER_SUCCESS:
      return 'producerSuccess';
    case CommandType.LOOKUP_RESPONSE:
      return 'lookupTopicResponse';
    case CommandType.PARTITIONED_METADATA_RESPONSE:
      return 'partitionMetadataResponse';
    case CommandType.ACK_RESPONSE:
      return 'ackResponse';
    case CommandType.GET_LAST_MESSAGE_ID_RESPONSE:
      return 'getLastMessageIdResponse';
    case CommandType.NEW_TXN_RESPONSE:
      return 'newTxnResponse';
    case CommandType.ADD_PARTITION_TO_TXN_RESPONSE:
      return 'addPartitionToTxnResponse';
    case CommandType.ADD_SUBSCRIPTION_TO_TXN_RESPONSE:
      return 'addSubscriptionToTxnResponse';
    case CommandType.END_TXN_RESPONSE:
      return 'endTxnResponse';
    default:
      return 'tcClientConnectResponse';
  }
}

/** A TLS socket to the broker, connecting; `secureConnect` fires once the handshake and the certificate checks passed. */
function tlsSocket(host: string, port: number, options: PulsarTlsOptions): tls.TLSSocket {
  const { ca, cert, key, hostnameVerification = true, allowInsecureConnection = false } = options;
  return tls.connect({
    host,
    port,
    // SNI takes names only; an IP is checked against the certificate's IP entries.
    ...(net.isIP(host) === 0 ? { servername: host } : {}),
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
    rejectUnauthorized: !allowInsecureConnection,
    ...(hostnameVerification ? {} : { checkServerIdentity: () => undefined }),
  });
}
