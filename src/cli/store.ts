import { mongoOutboxStore, sqlOutboxStore } from '../outbox/index.js';
import type { MongoDbLike, OutboxStore } from '../outbox/index.js';
import type { MongoDriverClientLike } from '../adapters/mongo/mongo-types.js';
import type { KnexLike } from '../adapters/sql/sql-types.js';
import { knexConfigOf, mongoUrlOf } from './cli-config.js';
import type { CliConfig, CliIo } from './cli-config.js';
import { flatMessage } from './explain.js';

/** The outbox store a command works on, with what to say about it and how to let it go. */
export interface OpenStore {
  store: OutboxStore<unknown>;
  /** e.g. "postgres 'txkit_outbox'" or "mongodb 'txkit_outbox'". */
  label: string;
  /** Tables or collections the schema consists of. */
  parts: string[];
  close(): Promise<void>;
}

/**
 * knex's own log, which it writes to standard output by default: to standard
 * error, one line per message without stack traces, so standard output
 * carries only the command's output (`txkit outbox status --json | jq`).
 */
function knexLog(io: CliIo): Record<'warn' | 'error' | 'deprecate' | 'debug', (message: unknown) => void> {
  const line = (message: unknown): void => io.err(`knex: ${flatMessage(message instanceof Error ? message.message : String(message))}\n`);
  return { warn: line, error: line, deprecate: line, debug: () => undefined };
}

/** Opens the store DATABASE_URL names: a SQL database through knex, or MongoDB through its driver (loaded only then). */
export async function openStore(config: CliConfig, io: CliIo): Promise<OpenStore> {
  const options = { partitions: config.partitions };
  const mongo = mongoUrlOf(config.databaseUrl);
  if (mongo !== undefined) {
    const { MongoClient } = (await import('mongodb')) as unknown as { MongoClient: new (url: string) => MongoDriverClientLike<MongoDbLike> };
    const client = new MongoClient(mongo.url);
    await client.connect();
    const store = mongoOutboxStore(client.db(mongo.database), { ...options, collectionPrefix: config.tablePrefix, changeStreams: config.command[0] === 'relay' });
    return {
      store: store as OutboxStore<unknown>,
      label: `mongodb '${store.collections.outbox}'`,
      parts: Object.values(store.collections),
      close: async () => {
        await store.close();
        await client.close();
      },
    };
  }
  const knexConfig = knexConfigOf(config.databaseUrl);
  const { default: knex } = (await import('knex')) as unknown as { default: (c: unknown) => KnexLike & { destroy(): Promise<void> } };
  const db = knex({ ...knexConfig, log: knexLog(io) });
  const store = sqlOutboxStore(db, { ...options, tablePrefix: config.tablePrefix });
  return {
    store: store as OutboxStore<unknown>,
    label: `${store.dialect} '${store.tables.outbox}'`,
    parts: Object.values(store.tables),
    close: async () => {
      await store.close();
      await db.destroy();
    },
  };
}

export async function withStore<T>(config: CliConfig, io: CliIo, use: (opened: OpenStore) => Promise<T>): Promise<T> {
  const opened = await openStore(config, io);
  try {
    return await use(opened);
  } finally {
    await opened.close();
  }
}
