/**
 * A loopback TCP proxy that injects network faults into one protocol's
 * traffic: it splits each direction into the protocol's frames and, when a
 * rule's predicate matches a frame, delays it, stalls it (and everything
 * behind it) until released, cuts the connection around it, or corrupts it.
 * Predicates see whole frames, so a rule can pick one request out of a
 * stream: Kafka EndTxn by api key, Pulsar END_TXN by command type, a
 * Postgres simple-query COMMIT.
 */
import net from 'node:net';

/** `to-server`: bytes the client sends; `to-client`: the server's answers. */
export type Direction = 'to-server' | 'to-client';

/**
 * How a direction's byte stream splits into frames.
 * `length-prefixed`: a 4-byte big-endian size, then that many bytes (Kafka, Pulsar).
 * `postgres`: a type byte and a 4-byte length that counts itself; the client's
 * first message (startup, or an SSL/GSS request before it) has no type byte.
 * `raw`: each chunk as it arrives.
 */
export type Framing = 'length-prefixed' | 'postgres' | 'raw';

export type FaultAction =
  /** Forward the frame after `ms`; frames behind it wait, so order holds. */
  | { readonly kind: 'delay'; readonly ms: number }
  /** Hold the frame and every later one of its direction until the rule is released (or the connection ends). */
  | { readonly kind: 'stall' }
  /**
   * Close the connection at this frame. `forward`: the frame reaches the
   * server first (default false). `keepServer`: only the client side is
   * closed and the server hears nothing, as behind a network partition
   * (default false: the server side is ended too).
   */
  | { readonly kind: 'cut'; readonly forward?: boolean; readonly keepServer?: boolean }
  /** Forward `mutate(frame)` instead of the frame (default: every byte after the first 8 inverted). */
  | { readonly kind: 'corrupt'; readonly mutate?: (frame: Buffer) => Buffer }
  /** Forward unchanged and only count: a probe (e.g. how many InitProducerId requests a client sent), not a fault. */
  | { readonly kind: 'observe' };

/** What a predicate knows besides the frame. */
export interface FrameInfo {
  /** Sequence number of the client connection, from 1. */
  readonly connection: number;
  readonly direction: Direction;
}

export interface FaultRuleOptions {
  readonly direction: Direction;
  /** Whole frame, framing header included. */
  readonly match: (frame: Buffer, info: FrameInfo) => boolean;
  readonly action: FaultAction;
  /** Frames this rule acts on before it retires. @default 1 */
  readonly times?: number;
}

/** A rule in force; `hit` resolves when it first acts, so a test waits on the fault instead of sleeping. */
export class FaultRule {
  readonly options: FaultRuleOptions;
  #hits = 0;
  #retired = false;
  #onHit!: () => void;
  readonly hit: Promise<void> = new Promise((resolve) => (this.#onHit = resolve));
  #released = false;
  #onRelease!: () => void;
  /** Resolves when release() is called; stalled frames wait on it. */
  readonly released: Promise<void> = new Promise((resolve) => (this.#onRelease = resolve));

  constructor(options: FaultRuleOptions) {
    const times = options.times ?? 1;
    if (!Number.isInteger(times) || times < 1) throw new Error(`FaultRule: times must be a positive integer, got ${String(times)}`);
    if (options.action.kind === 'delay' && !(options.action.ms >= 0)) throw new Error(`FaultRule: delay needs ms >= 0`);
    this.options = { ...options, times };
  }

  /** Connections of the frames this rule acted on, in order. */
  readonly connections: number[] = [];

  /** Frames this rule has acted on. */
  get hits(): number {
    return this.#hits;
  }

  get active(): boolean {
    return !this.#retired;
  }

  /** Lets stalled frames go on to their destination; the rule acts on no further frame. */
  release(): void {
    this.#retired = true;
    this.#released = true;
    this.#onRelease();
  }

  get isReleased(): boolean {
    return this.#released;
  }

  /** Stops acting on new frames; frames already stalled stay held until release(). */
  retire(): void {
    this.#retired = true;
  }

  /** @internal */
  take(frame: Buffer, info: FrameInfo): boolean {
    if (this.#retired || info.direction !== this.options.direction || !this.options.match(frame, info)) return false;
    this.#hits += 1;
    this.connections.push(info.connection);
    if (this.#hits >= (this.options.times ?? 1)) this.#retired = true;
    this.#onHit();
    return true;
  }
}

export interface FaultProxyOptions {
  readonly target: { readonly host: string; readonly port: number };
  /** Framing of each direction. */
  readonly framing: Framing | { readonly toServer: Framing; readonly toClient: Framing };
  /** Port to listen on (127.0.0.1). @default a free port */
  readonly port?: number;
}

interface Link {
  readonly id: number;
  readonly client: net.Socket;
  readonly server: net.Socket;
  closed: boolean;
  /** Resolves when the link closes: stalled frames stop waiting then. */
  readonly ended: Promise<void>;
  end(): void;
}

export class FaultProxy {
  readonly #options: FaultProxyOptions;
  readonly #server: net.Server;
  readonly #links = new Set<Link>();
  /** Every socket, including server sides a `keepServer` cut left open, so close() ends them all. */
  readonly #sockets = new Set<net.Socket>();
  readonly #rules: FaultRule[] = [];
  #connections = 0;
  #faults = 0;
  #address: { host: string; port: number } | undefined;

  constructor(options: FaultProxyOptions) {
    this.#options = options;
    this.#server = net.createServer((client) => this.#link(client));
  }

  /** Listens on 127.0.0.1 and returns the address clients connect to. */
  async start(): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#options.port ?? 0, '127.0.0.1', () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const { port } = this.#server.address() as net.AddressInfo;
    this.#address = { host: '127.0.0.1', port };
    return this.#address;
  }

  get address(): { host: string; port: number } {
    if (this.#address === undefined) throw new Error('FaultProxy: call start() first');
    return this.#address;
  }

  /** Client connections accepted so far. */
  get connections(): number {
    return this.#connections;
  }

  /** Faults injected so far (frames any rule acted on). */
  get faults(): number {
    return this.#faults;
  }

  /**
   * Adds a rule; rules are tried in the order they were added and the first
   * matching one acts (`observe` rules only count and never stop the search).
   */
  addRule(options: FaultRuleOptions): FaultRule {
    const rule = new FaultRule(options);
    this.#rules.push(rule);
    return rule;
  }

  /**
   * Closes one connection, as a network reset or a peer giving up would:
   * the client side always; the server side too unless `keepServer`.
   * Frames stalled on it are dropped.
   */
  cut(connection: number, { keepServer = false }: { keepServer?: boolean } = {}): void {
    for (const link of this.#links) if (link.id === connection) this.#close(link, { keepServer });
  }

  /** Closes every open connection (both sides), as a network reset would. */
  cutAll(): void {
    for (const link of this.#links) this.#close(link, { keepServer: false });
  }

  async close(): Promise<void> {
    for (const rule of this.#rules) rule.release();
    this.cutAll();
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #link(client: net.Socket): void {
    const server = net.connect(this.#options.target);
    let end!: () => void;
    const ended = new Promise<void>((resolve) => (end = resolve));
    const link: Link = { id: ++this.#connections, client, server, closed: false, ended, end };
    this.#links.add(link);
    for (const socket of [client, server]) {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    }
    // No Nagle: small protocol messages would otherwise wait for delayed ACKs.
    client.setNoDelay(true);
    server.setNoDelay(true);
    client.on('error', () => this.#close(link, { keepServer: false }));
    server.on('error', () => this.#close(link, { keepServer: false }));
    client.on('close', () => this.#close(link, { keepServer: false }));
    server.on('close', () => this.#close(link, { keepServer: false }));
    const framing = this.#options.framing;
    const toServer = typeof framing === 'string' ? framing : framing.toServer;
    const toClient = typeof framing === 'string' ? framing : framing.toClient;
    this.#flow(link, 'to-server', client, server, toServer);
    this.#flow(link, 'to-client', server, client, toClient);
  }

  /** One direction: split into frames, run each through the rules in order, write to the other side. */
  #flow(link: Link, direction: Direction, from: net.Socket, to: net.Socket, framing: Framing): void {
    const split = splitter(framing, direction);
    let chain = Promise.resolve();
    from.on('data', (chunk: Buffer) => {
      for (const frame of split(chunk)) {
        chain = chain.then(() => this.#deliver(link, direction, frame, to));
      }
    });
  }

  async #deliver(link: Link, direction: Direction, frame: Buffer, to: net.Socket): Promise<void> {
    if (link.closed) return;
    const info: FrameInfo = { connection: link.id, direction };
    let rule: FaultRule | undefined;
    for (const r of this.#rules) {
      // An observing rule counts the frame and lets the next rules see it too.
      if (r.take(frame, info) && r.options.action.kind !== 'observe') {
        rule = r;
        break;
      }
    }
    if (rule === undefined) {
      to.write(frame);
      return;
    }
    this.#faults += 1;
    const action = rule.options.action;
    switch (action.kind) {
      case 'observe':
        break;
      case 'delay':
        await new Promise((resolve) => setTimeout(resolve, action.ms));
        break;
      case 'stall':
        // Held until released, or dropped with the connection if that closes first.
        await Promise.race([rule.released, link.ended]);
        break;
      case 'cut':
        if (action.forward === true) to.write(frame);
        this.#close(link, { keepServer: action.keepServer === true });
        return;
      case 'corrupt':
        frame = action.mutate ? action.mutate(frame) : invertAfter(frame, 8);
        break;
    }
    if (!link.closed) to.write(frame);
  }

  #close(link: Link, { keepServer }: { keepServer: boolean }): void {
    if (link.closed) return;
    link.closed = true;
    this.#links.delete(link);
    link.client.destroy();
    // end(), not destroy(): a reset could discard bytes the server has not read yet.
    if (!keepServer) link.server.end();
    link.end();
  }
}

function invertAfter(frame: Buffer, offset: number): Buffer {
  const out = Buffer.from(frame);
  for (let i = Math.min(offset, out.length); i < out.length; i++) out[i] = (out[i] as number) ^ 0xff;
  return out;
}

/** Returns a function that takes chunks and returns the complete frames they finish. */
function splitter(framing: Framing, direction: Direction): (chunk: Buffer) => Buffer[] {
  if (framing === 'raw') return (chunk) => [chunk];
  let pending: Buffer = Buffer.alloc(0);
  let startup = framing === 'postgres' && direction === 'to-server';
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    const frames: Buffer[] = [];
    for (;;) {
      let length: number;
      if (framing === 'length-prefixed') {
        if (pending.length < 4) break;
        length = 4 + pending.readUInt32BE(0);
      } else {
        const header = startup ? 4 : 5;
        if (pending.length < header) break;
        length = startup ? pending.readInt32BE(0) : 1 + pending.readInt32BE(1);
      }
      if (pending.length < length) break;
      const frame = pending.subarray(0, length);
      pending = pending.subarray(length);
      // An SSLRequest (code 80877103) is followed by the real startup message.
      if (startup) startup = frame.length === 8 && frame.readInt32BE(4) === 80877103;
      frames.push(frame);
    }
    return frames;
  };
}

// ---------------------------------------------------------------------------
// Predicates for the protocols the fault tests speak.

/** Kafka API keys the fault tests pick out. */
export const KafkaApi = Object.freeze({
  Produce: 0,
  OffsetFetch: 9,
  JoinGroup: 11,
  InitProducerId: 22,
  AddPartitionsToTxn: 24,
  AddOffsetsToTxn: 25,
  EndTxn: 26,
  WriteTxnMarkers: 27,
  TxnOffsetCommit: 28,
});

/** A Kafka request frame (size, api_key, api_version, correlation_id, ...) with this api key. */
export function kafkaRequest(apiKey: number): (frame: Buffer) => boolean {
  return (frame) => frame.length >= 12 && frame.readInt16BE(4) === apiKey;
}

/**
 * A matched pair for one Kafka API: `request` notes the correlation ids of
 * that API's requests per connection, `response` matches their answers
 * (a response frame is size, correlation_id, ...).
 */
export function kafkaExchange(apiKey: number): {
  request: (frame: Buffer, info: FrameInfo) => boolean;
  response: (frame: Buffer, info: FrameInfo) => boolean;
} {
  const open = new Map<number, Set<number>>();
  return {
    request: (frame, info) => {
      if (!kafkaRequest(apiKey)(frame)) return false;
      let ids = open.get(info.connection);
      if (ids === undefined) open.set(info.connection, (ids = new Set()));
      ids.add(frame.readInt32BE(8));
      return true;
    },
    response: (frame, info) => frame.length >= 8 && open.get(info.connection)?.delete(frame.readInt32BE(4)) === true,
  };
}

/** Pulsar command types the fault tests pick out (PulsarApi.proto BaseCommand.Type). */
export const PulsarCommand = Object.freeze({ SEND: 6, ACK: 10, NEW_TXN: 50, END_TXN: 56, END_TXN_RESPONSE: 57 });

/**
 * A Pulsar frame ([totalSize][commandSize][BaseCommand]) whose command has
 * this type. BaseCommand's first field is `type` (field 1, varint); every
 * type the tests use is below 128, so it is one byte.
 */
export function pulsarCommand(type: number): (frame: Buffer) => boolean {
  return (frame) => frame.length >= 10 && frame[8] === 0x08 && frame[9] === type;
}

/** A Postgres simple query ('Q') whose text matches `sql`. */
export function postgresQuery(sql: RegExp): (frame: Buffer) => boolean {
  return (frame) => frame[0] === 0x51 && sql.test(frame.subarray(5, frame.length - 1).toString('utf8'));
}

/** A Postgres simple-query COMMIT, as pg and knex send it. */
export const postgresCommit = postgresQuery(/^\s*COMMIT\s*;?\s*$/i);
