/**
 * PGlite (Postgres compiled to WebAssembly, in this process) behind
 * @electric-sql/pglite-socket, so unmodified pg and knex code connects to it
 * over loopback TCP: the recipe docs/guides/sql.md shows for users' tests.
 */
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

export interface EmbeddedPostgres {
  /** A connection string for pg.Pool and knex. */
  readonly url: string;
  readonly db: PGlite;
  stop(): Promise<void>;
}

export async function startEmbeddedPostgres(maxConnections = 16): Promise<EmbeddedPostgres> {
  const db = await PGlite.create();
  // Port 0: the OS picks a free loopback port. maxConnections lets a pool hold several connections;
  // PGlite still runs one session, so a second transaction waits until the first one ends.
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections });
  await server.start();
  return {
    url: `postgres://postgres@${server.getServerConn()}/postgres`,
    db,
    stop: async () => {
      await server.stop();
      await db.close();
    },
  };
}
