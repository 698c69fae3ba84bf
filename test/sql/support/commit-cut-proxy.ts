/**
 * A loopback TCP proxy in front of Postgres that breaks the connection
 * around a COMMIT, on request: the way a network failure makes a commit's
 * outcome unknown to the client. It parses the frontend protocol just enough
 * to find a simple-query `COMMIT` (what pg and knex send).
 */
import net from 'node:net';

/**
 * `after-forward`: COMMIT reaches the server, then both sides are closed
 * before the reply returns (the server commits; the client cannot know).
 * `before-forward`: both sides are closed and COMMIT is dropped (the server
 * rolls back when it sees the connection end; the client cannot know either).
 * `partition`: COMMIT is dropped and only the client side is closed: the
 * server keeps the session idle in transaction, as behind a network
 * partition it would until TCP keepalive gives up (hours by default).
 */
export type CutMode = 'after-forward' | 'before-forward' | 'partition';

export class CommitCutProxy {
  readonly #target: { host: string; port: number };
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #armed: CutMode | undefined;
  #cuts = 0;

  constructor(target: { host: string; port: number }) {
    this.#target = target;
    this.#server = net.createServer((client) => this.#pipe(client));
  }

  /** Listens on 127.0.0.1 and returns the address to connect to. */
  async start(): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    const { port } = this.#server.address() as net.AddressInfo;
    return { host: '127.0.0.1', port };
  }

  /** The next COMMIT on any connection is cut this way; later ones pass. */
  arm(mode: CutMode): void {
    this.#armed = mode;
  }

  get armed(): CutMode | undefined {
    return this.#armed;
  }

  /** How many COMMITs were cut so far. */
  get cuts(): number {
    return this.#cuts;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #pipe(client: net.Socket): void {
    const upstream = net.connect(this.#target);
    this.#sockets.add(client);
    this.#sockets.add(upstream);
    const forget = (s: net.Socket) => () => this.#sockets.delete(s);
    client.on('close', forget(client));
    upstream.on('close', forget(upstream));
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.end());
    upstream.on('close', () => client.destroy());
    upstream.on('data', (chunk) => {
      if (!client.destroyed) client.write(chunk);
    });

    // No Nagle: the messages of one extended-protocol query would otherwise wait for delayed ACKs.
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    let pending = Buffer.alloc(0);
    let startup = true;
    client.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      const forward: Buffer[] = [];
      for (;;) {
        // The first message (startup, or an SSL/GSS request before it) has no type byte.
        const header = startup ? 4 : 5;
        if (pending.length < header) break;
        const length = startup ? pending.readInt32BE(0) : 1 + pending.readInt32BE(1);
        if (pending.length < length) break;
        const message = pending.subarray(0, length);
        pending = pending.subarray(length);
        if (startup) {
          // An SSLRequest (code 80877103) is followed by the real startup message.
          startup = message.length === 8 && message.readInt32BE(4) === 80877103;
        } else if (this.#armed !== undefined && isCommit(message)) {
          const mode = this.#armed;
          this.#armed = undefined;
          this.#cuts += 1;
          if (mode === 'after-forward') forward.push(message);
          if (forward.length > 0) upstream.write(Buffer.concat(forward));
          if (mode === 'partition') {
            // The server must not learn anything: forget the client side without closing upstream.
            client.removeAllListeners('close');
            client.on('close', forget(client));
          } else {
            // end(), not destroy(): a reset could discard the COMMIT the server has not read yet.
            upstream.end();
          }
          client.destroy();
          return;
        }
        forward.push(message);
      }
      if (forward.length > 0) upstream.write(Buffer.concat(forward));
    });
  }
}

function isCommit(message: Buffer): boolean {
  if (message[0] !== 0x51 /* 'Q' */) return false;
  const sql = message.subarray(5, message.length - 1).toString('utf8');
  return /^\s*COMMIT\s*;?\s*$/i.test(sql);
}
