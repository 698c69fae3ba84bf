// The transactional outbox with Postgres and nothing else: only `txkit` and `pg` are installed.
// Run: DATABASE_URL=postgres://... node outbox.mjs
import pg from 'pg';
import { MemoryStore, memoryTransactions } from 'txkit/memory';
import { Outbox, OutboxRelay, memorySink, sqlOutboxStore } from 'txkit/outbox';
import { pgTransactions } from 'txkit/sql';

const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const prefix = `sql_only_${process.pid}_${Date.now().toString(36)}_`;
const pool = new pg.Pool({ connectionString: url, max: 4 });
// A pg Pool, not knex: the same tables `txkit migrate` and a knex-based store use.
const store = sqlOutboxStore(pool, { tablePrefix: prefix });
const db = pgTransactions(pool);
const outbox = new Outbox(store);
// The memory broker stands in for Kafka or Pulsar, which need nothing else installed either way.
const broker = new MemoryStore();
const relay = new OutboxRelay({ store, sink: memorySink(memoryTransactions({ store: broker })), leases: false });

try {
  await store.migrate();
  await pool.query(`CREATE TABLE ${prefix}orders (id text PRIMARY KEY, total integer NOT NULL)`);
  relay.start();

  // The row and its message commit together, through the transaction's PoolClient.
  const [id] = await db.withTransaction(async (tx) => {
    await tx.handle.query(`INSERT INTO ${prefix}orders (id, total) VALUES ($1, $2)`, ['o-1', 42]);
    return outbox.publish(tx, { topic: 'order-events', key: 'o-1', value: 'created' });
  });

  await broker.waitFor(() => broker.messages('order-events').length === 1, 10_000);
  const [message] = broker.messages('order-events');
  if (message?.key !== 'o-1' || message.headers['txkit-outbox-id'] !== id) {
    throw new Error(`expected the relayed message o-1 with outbox id ${id}, got ${JSON.stringify(message)}`);
  }
  const { rows } = await pool.query(`SELECT total FROM ${prefix}orders WHERE id = $1`, ['o-1']);
  if (rows[0]?.total !== 42) throw new Error(`expected the committed row o-1 with total 42, found ${JSON.stringify(rows)}`);

  console.log('ok: published o-1 through the outbox and relayed it with only pg installed');
} finally {
  await relay.stop();
  await store.close();
  await db.close();
  for (const table of [...store.tableNames, `${prefix}orders`]) await pool.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
  await pool.end();
}
