/**
 * The OutboxStore conformance suite (txkit/testing's testOutboxStore) for
 * every store txkit ships: the memory store, the SQL store on SQLite
 * (embedded), Postgres and MariaDB through knex and on a plain pg Pool with
 * pgTransactions (as running here; skipped with the printed reason
 * otherwise), and the MongoDB store against the scripted
 * wire-protocol server, and against a real replica set when
 * service('mongodb') gives one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import { MongoClient } from 'mongodb';
import pgDriver from 'pg';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import { mongoTransactions } from '../../src/adapters/mongo/index.js';
import { knexTransactions, pgTransactions } from '../../src/adapters/sql/index.js';
import { MemoryOutboxStore, mongoOutboxStore, sqlOutboxStore } from '../../src/outbox/index.js';
import { testOutboxStore } from '../../src/testing/index.js';
import { service } from '../support/services.js';
import { ScriptedMongoServer, scriptedClient, uniqueName } from '../mongo/mongo-support.js';

const FAST = { initialDelayMs: 1, maxDelayMs: 20 } as const;
const test = { describe, it };

testOutboxStore({
  name: 'memory',
  test,
  make: async (partitions) => {
    const data = new MemoryStore();
    return { store: new MemoryOutboxStore(data, { partitions }), context: memoryTransactions({ store: data }) };
  },
});

// ---- SQL ----

const dir = mkdtempSync(join(tmpdir(), 'txkit-outbox-conformance-'));
const pg = service('postgres');
const mysql = service('mysql');
const databases: { name: string; make: () => Knex }[] = [
  {
    name: 'sqlite',
    make: () => knexFactory({ client: 'better-sqlite3', connection: { filename: join(dir, `c-${Date.now()}.db`) }, useNullAsDefault: true }),
  },
  ...(pg ? [{ name: 'postgres', make: () => knexFactory({ client: 'pg', connection: pg, pool: { min: 0, max: 6 } }) }] : []),
  ...(mysql ? [{ name: 'mariadb', make: () => knexFactory({ client: 'mysql2', connection: mysql, pool: { min: 0, max: 6 } }) }] : []),
];

afterAll(() => rmSync(dir, { recursive: true, force: true }));

let run = 0;

for (const database of databases) {
  describe(`sqlOutboxStore on ${database.name}`, () => {
    let db: Knex;
    beforeAll(() => {
      db = database.make();
    });
    afterAll(async () => {
      await db.destroy();
    });

    testOutboxStore({
      name: `sql (${database.name})`,
      test,
      make: async (partitions) => {
        const store = sqlOutboxStore(db, { tablePrefix: `tc${process.pid}_${Date.now().toString(36)}_${run++}_`, partitions });
        return {
          store,
          context: knexTransactions(db, { retry: FAST }),
          cleanup: async () => {
            for (const t of store.tableNames) await db.schema.dropTableIfExists(t);
          },
        };
      },
    });
  });
}

if (pg) {
  describe('sqlOutboxStore on a pg Pool', () => {
    let pool: pgDriver.Pool;
    beforeAll(() => {
      pool = new pgDriver.Pool({ connectionString: pg, max: 6 });
    });
    afterAll(async () => {
      await pool.end();
    });

    testOutboxStore({
      name: 'sql (postgres, pg Pool)',
      test,
      make: async (partitions) => {
        const store = sqlOutboxStore(pool, { tablePrefix: `tp${process.pid}_${Date.now().toString(36)}_${run++}_`, partitions });
        return {
          store,
          context: pgTransactions(pool, { retry: FAST }),
          cleanup: async () => {
            for (const t of store.tableNames) await pool.query(`drop table if exists ${t}`);
          },
        };
      },
    });
  });
}

// ---- MongoDB ----

function mongoSuite(name: string, client: () => MongoClient, dbName: () => string): void {
  testOutboxStore({
    name: `mongo (${name})`,
    test,
    timeoutMs: 60_000,
    make: async (partitions) => ({
      store: mongoOutboxStore(client().db(dbName()), { collectionPrefix: `${uniqueName('oc')}_`, partitions }),
      context: mongoTransactions(client(), { retry: { ...FAST, deadlineMs: 60_000 } }),
    }),
  });
}

describe('mongoOutboxStore on the scripted server', () => {
  let server: ScriptedMongoServer;
  let client: MongoClient;
  beforeAll(async () => {
    server = await new ScriptedMongoServer().start();
    client = scriptedClient(server);
    await client.connect();
  });
  afterAll(async () => {
    await client?.close();
    await server?.stop();
  });
  mongoSuite('scripted server', () => client, () => 'txkit');
});

const mongoUrl = service('mongodb');
if (mongoUrl !== undefined) {
  describe('mongoOutboxStore on a replica set', () => {
    let client: MongoClient;
    const dbName = uniqueName('txkit_outbox_conformance');
    beforeAll(async () => {
      client = new MongoClient(mongoUrl, { serverSelectionTimeoutMS: 10_000 });
      await client.connect();
    });
    afterAll(async () => {
      await client?.db(dbName).dropDatabase();
      await client?.close();
    });
    mongoSuite('replica set from MONGODB_URI', () => client, () => dbName);
  });
}
