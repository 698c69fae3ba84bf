import net from 'node:net';

/** A pg.Client's backend key data, address and query state (the knex pg dialect's connections are pg.Clients too). */
export interface PgCancelTarget {
  readonly processID?: number | null;
  readonly secretKey?: number | null;
  readonly host?: string;
  readonly port?: number;
  /** pg.Client: false while a statement is on its way or running, true once the server is ready again. */
  readonly readyForQuery?: boolean;
  /** pg.Client emits 'drain' once its query queue is empty. */
  on?(event: 'drain', listener: () => void): unknown;
  removeListener?(event: 'drain', listener: () => void): unknown;
}

// Frontend/backend protocol, "Canceling Requests in Progress": a 16-byte
// CancelRequest on a new connection, answered by the server closing it.
const CANCEL_REQUEST_CODE = 80877102;
/** A cancel that did not end the statement is sent again after this long, at most MAX_CANCELS times in all. */
const RESEND_AFTER_MS = 50;
const MAX_CANCELS = 10;
/** Bound on a cancel to an unreachable server: cancelling is best effort, the rollback that follows frees the connection. */
const CANCEL_SOCKET_TIMEOUT_MS = 5_000;

/**
 * Cancels the statement running on a Postgres session the way psql's Ctrl-C
 * does. Unlike `SELECT pg_cancel_backend(pid)` it needs no pooled connection
 * (the pool may be exhausted by the very transactions that time out) and no
 * login, and a server that does not support it (PGlite's socket server)
 * simply ignores it. Resolves once the server has closed the request's
 * connection, i.e. after it signalled the session; never rejects.
 */
export function sendPgCancelRequest(target: PgCancelTarget, timeoutMs = CANCEL_SOCKET_TIMEOUT_MS): Promise<void> {
  const { processID, secretKey, host, port } = target;
  if (typeof processID !== 'number' || typeof secretKey !== 'number' || typeof port !== 'number') {
    return Promise.resolve();
  }
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  // pg parses both as signed 32-bit integers; the wire carries the same four bytes either way.
  packet.writeUInt32BE(processID >>> 0, 8);
  packet.writeUInt32BE(secretKey >>> 0, 12);
  return new Promise((resolve) => {
    // pg connects to a Unix socket when host is a directory, as here.
    const socket =
      host !== undefined && host.startsWith('/')
        ? net.connect(`${host}/.s.PGSQL.${port}`)
        : net.connect({ host: host === undefined || host === '' ? 'localhost' : host, port });
    const done = (): void => {
      socket.destroy();
      resolve();
    };
    socket.setTimeout(Math.max(1, Math.min(timeoutMs, CANCEL_SOCKET_TIMEOUT_MS)), done);
    socket.once('connect', () => socket.end(packet));
    socket.once('error', done);
    socket.once('close', done);
  });
}

/**
 * Cancels what runs on `client` until it is idle. Postgres ignores a cancel
 * that reaches the session before the statement does (it cancels "nothing"),
 * which happens when the server is busy, so a statement still running after
 * RESEND_AFTER_MS gets another cancel, up to MAX_CANCELS in all; after that
 * the rollback waits for the statement. Sends nothing when the client is idle.
 * Gives up at `deadline` (a Date.now() time): a server that does not answer
 * (a partition) must not hold the caller; its connection is destroyed then.
 */
export async function cancelRunningStatement(client: PgCancelTarget, deadline = Number.POSITIVE_INFINITY): Promise<void> {
  if (client.readyForQuery === true) return;
  for (let sent = 0; sent < MAX_CANCELS && Date.now() < deadline; sent++) {
    await sendPgCancelRequest(client, deadline - Date.now());
    if (client.readyForQuery !== false || (await drained(client, RESEND_AFTER_MS))) return;
  }
}

/** True once `client` emits 'drain', false after `ms` (or at once when it cannot tell). */
function drained(client: PgCancelTarget, ms: number): Promise<boolean> {
  if (typeof client.on !== 'function' || typeof client.removeListener !== 'function') return Promise.resolve(false);
  return new Promise((resolve) => {
    const finish = (value: boolean): void => {
      clearTimeout(timer);
      client.removeListener?.('drain', onDrain);
      resolve(value);
    };
    const onDrain = (): void => finish(true);
    const timer = setTimeout(() => finish(client.readyForQuery !== false), ms);
    client.on?.('drain', onDrain);
  });
}
