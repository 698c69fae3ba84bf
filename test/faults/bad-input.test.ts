/**
 * Invalid options and API misuse across the public API, table by table:
 * each case must fail with a typed error (ConfigError for what is wrong
 * before any work, TransactionStateError for a call the transaction's state
 * does not allow) whose message names what was wrong and says what to do.
 * Nothing here needs a running service except the cases that observe a
 * real Postgres handle (skipped with a reason when Postgres is absent).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import type { MongoClient } from 'mongodb';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaTransactions, transactionalConsumer } from '../../src/adapters/kafka/index.js';
import { MemoryStore, memoryTransactions } from '../../src/adapters/memory/index.js';
import type { MemoryTxHandle } from '../../src/adapters/memory/index.js';
import { MongoForeignSessionError, mongoTransactions } from '../../src/adapters/mongo/index.js';
import { knexTransactions, pgTransactions } from '../../src/adapters/sql/index.js';
import type { SqlOptions } from '../../src/adapters/sql/index.js';
import {
  ConfigError,
  TransactionPropagationError,
  TransactionStateError,
  TxkitError,
} from '../../src/core/index.js';
import type { Transaction } from '../../src/core/index.js';
import { kafkaSink } from '../../src/outbox/kafka/kafka-sink.js';
import { memorySink, memorySource } from '../../src/outbox/memory/memory-broker.js';
import { MemoryOutboxStore } from '../../src/outbox/stores/memory-outbox-store.js';
import { Outbox } from '../../src/outbox/engine/outbox.js';
import { pipeline } from '../../src/outbox/engine/pipeline.js';
import type { PipelineOptions } from '../../src/outbox/engine/pipeline.js';
import { OutboxRelay } from '../../src/outbox/engine/relay.js';
import { sqlOutboxStore } from '../../src/outbox/stores/sql-outbox-store.js';
import { ScriptedMongoServer, scriptedClient, uniqueName } from '../mongo/mongo-support.js';
import { service } from '../support/services.js';

type ErrorClass = abstract new (...args: never[]) => Error;

/** One misuse: what to run, the error class it must raise, and the words its message must contain. */
interface Case {
  name: string;
  run: () => unknown;
  error: ErrorClass;
  /** Names the option or call that was wrong and what to do about it. */
  message: RegExp;
  code?: string;
}

/** The error `run` throws or rejects with; fails the test when it succeeds. */
async function failureOf(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure, but the call succeeded');
}

function table(title: string, cases: () => Case[]): void {
  describe(title, () => {
    it.each(cases())('$name', async (c) => {
      const err = await failureOf(c.run);
      expect(err, String(err)).toBeInstanceOf(c.error);
      expect(err).toBeInstanceOf(TxkitError);
      expect((err as Error).message).toMatch(c.message);
      if (c.code !== undefined) expect((err as TxkitError).code).toBe(c.code);
    });
  });
}

const noop = async (): Promise<void> => undefined;

// ---------------------------------------------------------------------------------------------
// Core options and the transaction state machine, on the memory backend (no service needed).

const mem = memoryTransactions();
const opts = (o: unknown): never => o as never;

table('core options: ConfigError naming the option and the valid values', () => [
  { name: 'callback is not a function', run: () => mem.withTransaction(opts('work')), error: ConfigError, message: /withTransaction needs a callback function, got string/ },
  { name: 'unknown propagation', run: () => mem.withTransaction(noop, opts({ propagation: 'sometimes' })), error: ConfigError, message: /unknown propagation 'sometimes'; use one of required, requires_new, nested/ },
  { name: 'negative timeoutMs', run: () => mem.withTransaction(noop, { timeoutMs: -1 }), error: ConfigError, message: /timeoutMs must be a positive finite number of milliseconds, got -1/ },
  { name: 'NaN timeoutMs', run: () => mem.withTransaction(noop, { timeoutMs: Number.NaN }), error: ConfigError, message: /timeoutMs must be a positive finite number of milliseconds, got NaN/ },
  { name: 'timeoutMs as a string', run: () => mem.withTransaction(noop, opts({ timeoutMs: '100' })), error: ConfigError, message: /timeoutMs must be a positive finite number of milliseconds, got 100/ },
  { name: 'infinite timeoutMs', run: () => mem.withTransaction(noop, { timeoutMs: Number.POSITIVE_INFINITY }), error: ConfigError, message: /timeoutMs must be a positive finite number/ },
  { name: 'signal that is not an AbortSignal', run: () => mem.withTransaction(noop, opts({ signal: { aborted: false } })), error: ConfigError, message: /signal must be an AbortSignal, got object/ },
  { name: 'retry that is not an object', run: () => mem.withTransaction(noop, opts({ retry: 'fast' })), error: ConfigError, message: /retry must be an object or false, got string/ },
  { name: 'negative retry.deadlineMs', run: () => mem.withTransaction(noop, { retry: { deadlineMs: -5 } }), error: ConfigError, message: /retry\.deadlineMs must be a positive number, got -5/ },
  { name: 'NaN retry.deadlineMs', run: () => mem.withTransaction(noop, { retry: { deadlineMs: Number.NaN } }), error: ConfigError, message: /retry\.deadlineMs must be a positive number, got NaN/ },
  { name: 'zero retry.maxAttempts', run: () => mem.withTransaction(noop, { retry: { maxAttempts: 0 } }), error: ConfigError, message: /retry\.maxAttempts must be a positive number, got 0/ },
  { name: 'negative retry.initialDelayMs', run: () => mem.withTransaction(noop, { retry: { initialDelayMs: -1 } }), error: ConfigError, message: /retry\.initialDelayMs must be a non-negative number, got -1/ },
  { name: 'NaN retry.maxDelayMs', run: () => mem.withTransaction(noop, { retry: { maxDelayMs: Number.NaN } }), error: ConfigError, message: /retry\.maxDelayMs must be a non-negative number, got NaN/ },
  { name: 'retry.multiplier below 1', run: () => mem.withTransaction(noop, { retry: { multiplier: 0.5 } }), error: ConfigError, message: /retry\.multiplier must be at least 1, got 0\.5/ },
  { name: 'unknown retry.jitter', run: () => mem.withTransaction(noop, opts({ retry: { jitter: 'half' } })), error: ConfigError, message: /retry\.jitter must be 'full' or 'none', got half/ },
  { name: 'unknown retry field', run: () => mem.withTransaction(noop, opts({ retry: { deadline: 5 } })), error: ConfigError, message: /retry has unknown field deadline; the fields are deadlineMs, maxAttempts/ },
  { name: 'fractional retry.maxAttempts', run: () => mem.withTransaction(noop, { retry: { maxAttempts: 1.5 } }), error: ConfigError, message: /retry\.maxAttempts must be a whole number or Infinity, got 1\.5/ },
  { name: 'infinite retry.deadlineMs', run: () => mem.withTransaction(noop, { retry: { deadlineMs: Number.POSITIVE_INFINITY } }), error: ConfigError, message: /retry\.deadlineMs must be finite: it is what bounds the retries/ },
  { name: 'context retry policy checked at construction', run: () => memoryTransactions({ retry: { deadlineMs: 0 } }), error: ConfigError, message: /retry\.deadlineMs must be a positive number, got 0/ },
  { name: 'context defaults checked at construction', run: () => memoryTransactions({ defaults: { timeoutMs: -1 } }), error: ConfigError, message: /timeoutMs must be a positive finite number/ },
  { name: 'an isolation level on the memory backend', run: () => mem.withTransaction(noop, opts({ isolationLevel: 'serializable' })), error: ConfigError, message: /unknown option 'isolationLevel' in the options of a memory transaction \(check the spelling\); the accepted options are timeoutMs, signal, propagation, retry/ },
  { name: 'memoryTransactions options that are not an object', run: () => memoryTransactions(opts('fast')), error: ConfigError, message: /memoryTransactions\(options\) needs an options object such as \{ store \}, got "fast"/ },
  { name: 'memoryTransactions store that is not a MemoryStore', run: () => memoryTransactions(opts({ store: new Map() })), error: ConfigError, message: /needs a MemoryStore instance/ },
  { name: 'MemoryStore with zero partitions', run: () => new MemoryStore({ partitions: 0 }), error: ConfigError, message: /MemoryStore partitions must be a positive integer, got 0/ },
]);

/** A transaction of `mem` that has ended the given way. */
async function ended(how: 'committed' | 'aborted'): Promise<Transaction<MemoryTxHandle>> {
  const tx = await mem.begin();
  if (how === 'committed') await tx.commit();
  else await tx.abort('test');
  return tx;
}

table('state machine misuse: TransactionStateError naming the method and the state', () => [
  { name: 'commit after abort', run: async () => (await ended('aborted')).commit(), error: TransactionStateError, message: /commit\(\) is not allowed: the memory transaction is aborted and has ended; start a new transaction/, code: 'INVALID_STATE' },
  { name: 'abort after commit', run: async () => (await ended('committed')).abort(), error: TransactionStateError, message: /abort\(\) is not allowed: the memory transaction is committed and has ended; start a new transaction/ },
  { name: 'commit twice', run: async () => (await ended('committed')).commit(), error: TransactionStateError, message: /commit\(\) is not allowed: the memory transaction is committed and has ended/ },
  { name: 'afterCommit on an ended transaction', run: async () => (await ended('aborted')).afterCommit(noop), error: TransactionStateError, message: /afterCommit\(\) is not allowed: the memory transaction is aborted/ },
  { name: 'handle used after its transaction committed', run: async () => (await ended('committed')).handle.set('k', 1), error: TransactionStateError, message: /set\(\) is not allowed: this memory transaction handle belongs to a transaction that was committed; use the handle of the transaction you are in/, code: 'HANDLE_ENDED' },
  { name: 'handle kept from an earlier unit and used in the next', run: async () => { const old = await mem.withTransaction(async (tx) => tx.handle); return mem.withTransaction(() => old.get('k')); }, error: TransactionStateError, message: /get\(\) is not allowed: .*use the handle of the transaction you are in/, code: 'HANDLE_ENDED' },
  { name: 'send on a handle after abort', run: async () => (await ended('aborted')).handle.send({ topic: 't', messages: [{ value: 'v' }] }), error: TransactionStateError, message: /send\(\) is not allowed: .*rolled back; use the handle of the transaction you are in/ },
  { name: 'commit from a scope that joined a running transaction', run: () => mem.withTransaction(() => mem.withTransaction((inner) => inner.commit())), error: TransactionStateError, message: /commit\(\) is not allowed in a scope that joined .*use propagation 'requires_new' for an independent transaction/, code: 'JOINED_COMMIT' },
  { name: "propagation 'mandatory' without a transaction", run: () => mem.withTransaction(noop, { propagation: 'mandatory' }), error: TransactionPropagationError, message: /propagation 'mandatory' needs a running memory transaction .*call this inside withTransaction/ },
  { name: 'withTransaction on a closed context', run: async () => { const c = memoryTransactions(); await c.close(); return c.withTransaction(noop); }, error: TransactionStateError, message: /withTransaction\(\) is not allowed: this memory transaction context is closed/, code: 'CONTEXT_CLOSED' },
]);

table('memory handle input: ConfigError before anything is written or sent', () => [
  { name: 'empty key', run: () => mem.withTransaction((tx) => tx.handle.set('', 1)), error: ConfigError, message: /set\(\) needs a non-empty string key, got string/ },
  { name: 'set without a value', run: () => mem.withTransaction((tx) => tx.handle.set('k', undefined)), error: ConfigError, message: /set\('k'\) needs a value; use delete\('k'\) to remove a key/ },
  { name: 'send without a topic', run: () => mem.withTransaction((tx) => tx.handle.send(opts({ messages: [{ value: 'v' }] }))), error: ConfigError, message: /send\(\) needs a non-empty topic name, got undefined/ },
  { name: 'send with an object value', run: () => mem.withTransaction((tx) => tx.handle.send({ topic: 't', messages: [{ value: opts({ a: 1 }) }] })), error: ConfigError, message: /messages\[0\]\.value must be a string, a Buffer or null, got object; serialize objects first/ },
  { name: 'send with a number header', run: () => mem.withTransaction((tx) => tx.handle.send({ topic: 't', messages: [{ value: 'v', headers: { n: opts(1) } }] })), error: ConfigError, message: /messages\[0\]\.headers\['n'\] must be a string or a Buffer, got number/ },
  { name: 'send with a negative partition', run: () => mem.withTransaction((tx) => tx.handle.send({ topic: 't', messages: [{ value: 'v', partition: -1 }] })), error: ConfigError, message: /partition must be a non-negative integer, got -1/ },
  { name: 'sendBatch without topicMessages', run: () => mem.withTransaction((tx) => tx.handle.sendBatch(opts({}))), error: ConfigError, message: /sendBatch\(\) needs \{ topicMessages: \[\{ topic, messages \}\] \}/ },
  { name: 'sendOffsets with an offset that is not a number', run: () => mem.withTransaction((tx) => tx.handle.sendOffsets({ consumerGroupId: 'g', topics: [{ topic: 't', partitions: [{ partition: 0, offset: 'next' }] }] })), error: ConfigError, message: /sendOffsets\(\) for topic 't' needs integer partitions and offsets as decimal strings/ },
]);

// ---------------------------------------------------------------------------------------------
// SQL adapters: validation runs before any connection is made.

const sqliteDir = mkdtempSync(join(tmpdir(), 'txkit-bad-input-'));
const pgUrl = service('postgres');
const lazyPgUrl = pgUrl ?? 'postgres://postgres@127.0.0.1:5432/test';
const pool = new pg.Pool({ connectionString: lazyPgUrl, max: 2 });
const knexPg: Knex = knexFactory({ client: 'pg', connection: lazyPgUrl, pool: { min: 0, max: 2 } });
const knexMysql: Knex = knexFactory({ client: 'mysql2', connection: 'mysql://root@127.0.0.1:3306/test', pool: { min: 0, max: 1 } });
const knexSqlite: Knex = knexFactory({ client: 'better-sqlite3', connection: { filename: join(sqliteDir, 'bad.db') }, useNullAsDefault: true });

afterAll(async () => {
  await pool.end();
  await knexPg.destroy();
  await knexMysql.destroy();
  await knexSqlite.destroy();
  rmSync(sqliteDir, { recursive: true, force: true });
});

const sqlCall = (db: Knex, o: object): Promise<unknown> => knexTransactions(db).withTransaction(noop, o as SqlOptions);

table('SQL options: ConfigError before any connection', () => [
  { name: 'knexTransactions without a knex instance', run: () => knexTransactions(opts({})), error: ConfigError, message: /knexTransactions\(knex\) needs a knex instance \(what knex\(\{ client, connection \}\) returns\), got object/ },
  { name: 'pgTransactions without a pool', run: () => pgTransactions(opts({})), error: ConfigError, message: /pgTransactions\(pool\) needs a pg Pool \(new pg\.Pool\(\{\.\.\.\}\)\), got object/ },
  { name: 'pgTransactions with one pg.Client', run: () => pgTransactions(opts(new pg.Client({ connectionString: lazyPgUrl }))), error: ConfigError, message: /one pg\.Client cannot carry concurrent transactions: pass a Pool/ },
  { name: 'factory options that are not an object', run: () => pgTransactions(pool, opts('serializable')), error: ConfigError, message: /options of a SQL transaction context must be an object such as \{ isolationLevel: 'serializable' \}, got 'serializable'/ },
  { name: 'unknown isolation level', run: () => pgTransactions(pool).withTransaction(noop, opts({ isolationLevel: 'snapshot' })), error: ConfigError, message: /isolationLevel must be one of 'read uncommitted', 'read committed', 'repeatable read', 'serializable', got 'snapshot'/ },
  { name: 'isolation level in the wrong case', run: () => sqlCall(knexPg, { isolationLevel: 'SERIALIZABLE' }), error: ConfigError, message: /isolationLevel must be one of .*got 'SERIALIZABLE'/ },
  { name: 'unknown isolation level as a factory default', run: () => knexTransactions(knexPg, opts({ isolationLevel: 'linearizable' })), error: ConfigError, message: /isolationLevel must be one of .*got 'linearizable'/ },
  { name: 'misspelt option name', run: () => sqlCall(knexPg, { isolation: 'serializable' }), error: ConfigError, message: /unknown option 'isolation' in the options of a postgres transaction \(check the spelling\); the accepted options are timeoutMs, signal, isolationLevel, readOnly/ },
  { name: 'readOnly as a string', run: () => sqlCall(knexPg, { readOnly: 'yes' }), error: ConfigError, message: /readOnly must be a boolean, got 'yes'/ },
  { name: 'deferrable without serializable read-only', run: () => sqlCall(knexPg, { deferrable: true }), error: ConfigError, message: /set isolationLevel: 'serializable' and readOnly: true with it, or drop deferrable/ },
  { name: 'deferrable on MariaDB', run: () => sqlCall(knexMysql, { deferrable: true }), error: ConfigError, message: /deferrable is a Postgres option; MySQL\/MariaDB has no deferrable transactions/ },
  { name: 'verifyCommit on MariaDB', run: () => sqlCall(knexMysql, { verifyCommit: true }), error: ConfigError, message: /verifyCommit needs Postgres's pg_xact_status\(\).*drop verifyCommit/ },
  { name: 'a weaker isolation level on SQLite', run: () => sqlCall(knexSqlite, { isolationLevel: 'read committed' }), error: ConfigError, message: /SQLite has no 'read committed' isolation level.*leave isolationLevel out or ask for 'serializable'/ },
  { name: 'readOnly on SQLite', run: () => sqlCall(knexSqlite, { readOnly: true }), error: ConfigError, message: /SQLite has no read-only transactions; open the database read-only instead/ },
  { name: 'NaN timeoutMs on pg', run: () => pgTransactions(pool).withTransaction(noop, { timeoutMs: Number.NaN }), error: ConfigError, message: /timeoutMs must be a positive finite number of milliseconds, got NaN/ },
  { name: 'negative retry.maxDelayMs on knex', run: () => knexTransactions(knexPg, { retry: { maxDelayMs: -1 } }), error: ConfigError, message: /retry\.maxDelayMs must be a non-negative number, got -1/ },
]);

table('SQL handles after their transaction ended: TransactionStateError (SQLite, embedded)', () => [
  {
    name: 'a knex handle kept from an earlier unit',
    run: async () => {
      const ctx = knexTransactions(knexSqlite);
      const old = await ctx.withTransaction(async (tx) => tx.handle);
      return ctx.withTransaction(async () => old.raw('select 1'));
    },
    error: TransactionStateError,
    message: /query\(\) is not allowed: this SQLite transaction handle belongs to a transaction that has ended .*use the handle of the transaction you are in, not one kept from an earlier unit/,
    code: 'HANDLE_ENDED',
  },
]);

describe.skipIf(pgUrl === undefined)('pg handle misuse on a real Postgres', () => {
  it.each([
    {
      name: 'a query on a handle after its transaction committed',
      run: async () => {
        const tx = await pgTransactions(pool).begin();
        await tx.commit();
        return tx.handle.query('select 1');
      },
      message: /query\(\) is not allowed: this Postgres transaction handle belongs to a transaction that has ended \(committing\).*use the handle of the transaction you are in/,
      code: 'HANDLE_ENDED',
    },
    {
      name: 'release() called on the handle',
      run: () => pgTransactions(pool).withTransaction(async (tx) => tx.handle.release()),
      message: /release\(\) is not allowed on a transaction handle: txkit releases the client when the transaction ends/,
      code: 'HANDLE_RELEASE',
    },
  ])('$name: TransactionStateError, and the pool gets its client back', async (c) => {
    const err = await failureOf(c.run);
    expect(err).toBeInstanceOf(TransactionStateError);
    expect((err as Error).message).toMatch(c.message);
    expect((err as TxkitError).code).toBe(c.code);
    expect(pool.totalCount - pool.idleCount).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Kafka: validated before a producer is made; nothing connects.

const kafka = new Kafka({ clientId: 'bad-input', brokers: ['127.0.0.1:9'], logLevel: logLevel.NOTHING });

table('kafkaTransactions options: ConfigError before a producer is made', () => [
  { name: 'no Kafka instance', run: () => kafkaTransactions(opts({}), { transactionalId: 'a' }), error: ConfigError, message: /needs a kafkajs Kafka instance \(an object with producer\(\)\)/ },
  { name: 'no options', run: () => kafkaTransactions(kafka, opts(undefined)), error: ConfigError, message: /needs options with a transactionalId, e\.g\. \{ transactionalId: 'orders-1' \}/ },
  { name: 'empty transactionalId', run: () => kafkaTransactions(kafka, { transactionalId: ' ' }), error: ConfigError, message: /needs a non-empty transactionalId string.*use one stable id per producing instance/ },
  { name: 'unknown client flavour', run: () => kafkaTransactions(kafka, opts({ transactionalId: 'a', client: 'rdkafka' })), error: ConfigError, message: /client must be 'kafkajs', 'confluent' or 'platformatic', got "rdkafka"/ },
  { name: 'producer config that is not an object', run: () => kafkaTransactions(kafka, opts({ transactionalId: 'a', producer: 'fast' })), error: ConfigError, message: /`producer` must be an object of kafkajs producer config/ },
  { name: 'a non-idempotent producer', run: () => kafkaTransactions(kafka, { transactionalId: 'a', producer: opts({ idempotent: false }) }), error: ConfigError, message: /remove producer\.idempotent: false/ },
  { name: 'more than one request in flight', run: () => kafkaTransactions(kafka, { transactionalId: 'a', producer: opts({ maxInFlightRequests: 5 }) }), error: ConfigError, message: /only with maxInFlightRequests: 1, got 5/ },
  { name: 'transactionalId given to the producer', run: () => kafkaTransactions(kafka, { transactionalId: 'a', producer: opts({ transactionalId: 'b' }) }), error: ConfigError, message: /set the transactionalId option, not producer\.transactionalId/ },
  { name: 'negative transactionTimeout', run: () => kafkaTransactions(kafka, { transactionalId: 'a', producer: opts({ transactionTimeout: -1 }) }), error: ConfigError, message: /producer\.transactionTimeout must be a positive integer of ms, got -1/ },
  { name: 'NaN producer retry', run: () => kafkaTransactions(kafka, { transactionalId: 'a', producer: opts({ retry: { retries: Number.NaN } }) }), error: ConfigError, message: /producer\.retry\.retries must be a finite non-negative number, got NaN/ },
  { name: 'invalid retry policy', run: () => kafkaTransactions(kafka, { transactionalId: 'a', retry: { deadlineMs: -1 } }), error: ConfigError, message: /retry\.deadlineMs must be a positive number, got -1/ },
  { name: 'a pool size that is not a whole number', run: () => kafkaTransactions(kafka, { transactionalIdPrefix: 'p', poolSize: 2.5 }), error: ConfigError, message: /poolSize must be a whole number of producers from 1 to 1024, got 2\.5/ },
  { name: 'a pool without a prefix', run: () => kafkaTransactions(kafka, { transactionalId: 'a', poolSize: 4 }), error: ConfigError, message: /poolSize 4 needs transactionalIdPrefix/ },
  { name: 'both an id and a prefix', run: () => kafkaTransactions(kafka, { transactionalId: 'a', transactionalIdPrefix: 'p' }), error: ConfigError, message: /transactionalId \(one producer\) or transactionalIdPrefix \(a pool\), not both/ },
  { name: 'transactionalConsumer with both a context and a prefix', run: () => transactionalConsumer(kafka, opts({ context: {}, transactionalIdPrefix: 'p', groupId: 'g', topics: ['t'], eachBatch: async () => undefined })), error: ConfigError, message: /context \(one producer\) or transactionalIdPrefix \(one per input partition\), not both/ },
  { name: 'transactionalConsumer with neither', run: () => transactionalConsumer(kafka, opts({ groupId: 'g', topics: ['t'], eachBatch: async () => undefined })), error: ConfigError, message: /needs `transactionalIdPrefix` \(a producer per input partition\) or `context`/ },
  { name: 'transactionalConsumer with no admin client to read committed offsets', run: () => transactionalConsumer({ consumer: () => kafka.consumer({ groupId: 'g' }) }, opts({ context: kafkaTransactions({ producer: (c: never) => kafka.producer(c) } as never, { transactionalId: 'no-admin' }), groupId: 'g', topics: ['t'], eachBatch: async () => undefined })), error: ConfigError, message: /reads the group's committed offsets after each join with an admin client/ },
]);

// ---------------------------------------------------------------------------------------------
// MongoDB: the real driver against the scripted server.

describe('mongoTransactions misuse (real driver, scripted server)', () => {
  let server: ScriptedMongoServer;
  let client: MongoClient;
  let other: MongoClient;

  beforeAll(async () => {
    server = await new ScriptedMongoServer().start();
    client = scriptedClient(server);
    other = scriptedClient(server);
    await client.connect();
    await other.connect();
  });

  afterAll(async () => {
    await other?.close();
    await client?.close();
    await server?.stop();
  });

  const cases = (): Case[] => {
    // Made when a case runs: the client connects in beforeAll, after the cases are collected.
    const ctx = (): ReturnType<typeof mongoTransactions<MongoClient>> => mongoTransactions(client);
    const coll = (c: MongoClient) => c.db('txkit').collection<{ _id: string }>(uniqueName('bad_input'));
    return [
      { name: 'no MongoClient', run: () => mongoTransactions(opts({})), error: ConfigError, message: /mongoTransactions\(client\) needs a MongoClient from the 'mongodb' package, got object/ },
      { name: 'causalConsistency as a string', run: () => mongoTransactions(client, opts({ causalConsistency: 'yes' })), error: ConfigError, message: /causalConsistency must be a boolean, got string/ },
      { name: 'unknown read concern', run: () => ctx().withTransaction(noop, opts({ readConcern: 'linearizable' })), error: ConfigError, message: /readConcern must be 'local', 'majority' or 'snapshot' \(or \{ level \}\) in a MongoDB transaction, got 'linearizable'/ },
      { name: 'unacknowledged write concern', run: () => ctx().withTransaction(noop, { writeConcern: { w: 0 } }), error: ConfigError, message: /writeConcern \{ w: 0 \} is not allowed.*use w: 1 or 'majority'/ },
      { name: 'unknown read preference', run: () => ctx().withTransaction(noop, opts({ readPreference: 'sometimes' })), error: ConfigError, message: /readPreference must be one of primary, primaryPreferred/ },
      { name: 'negative maxCommitTimeMS', run: () => ctx().withTransaction(noop, { maxCommitTimeMS: -5 }), error: ConfigError, message: /maxCommitTimeMS must be a positive integer of milliseconds, got -5/ },
      { name: "propagation 'nested' (no savepoints)", run: () => {
          const c = ctx();
          return c.withTransaction(() => c.withTransaction(noop, { propagation: 'nested' }));
        }, error: TransactionPropagationError, message: /propagation 'nested' needs savepoints.*use 'required' to join the running transaction or 'requires_new'/ },
      {
        name: 'a session used with another MongoClient',
        run: () => ctx().withTransaction(async (tx) => void (await coll(other).insertOne({ _id: 'k' }, { session: tx.handle }))),
        error: MongoForeignSessionError,
        message: /different MongoClient.*take collections from that same client/,
        code: 'FOREIGN_SESSION',
      },
      {
        name: 'a session kept from an earlier unit',
        run: async () => {
          const c = ctx();
          const old = await c.withTransaction(async (tx) => tx.handle);
          return c.withTransaction(async () => void (await coll(client).insertOne({ _id: 'k' }, { session: old })));
        },
        error: TransactionStateError,
        message: /session \(tx\.handle\) was used after its transaction ended.*pass \{ session: tx\.handle \} of the transaction you are in/,
        code: 'HANDLE_ENDED',
      },
    ];
  };

  it.each(cases())('$name', async (c) => {
    const err = await failureOf(c.run);
    expect(err, String(err)).toBeInstanceOf(c.error);
    expect(err).toBeInstanceOf(TxkitError);
    expect((err as Error).message).toMatch(c.message);
    if (c.code !== undefined) expect((err as TxkitError).code).toBe(c.code);
  });
});

// ---------------------------------------------------------------------------------------------
// Outbox, pipeline and relay options, on the memory store.

const outboxData = new MemoryStore();
const outboxDb = memoryTransactions({ store: outboxData });
const outboxStore = new MemoryOutboxStore(outboxData);
const outbox = new Outbox(outboxStore, { maxValueBytes: 16 });
const publish = (m: unknown): Promise<unknown> => outboxDb.withTransaction((tx) => outbox.publish(tx, m as never));

table('outbox.publish: bad messages get ConfigError and nothing is written', () => [
  { name: 'Outbox without a store', run: () => new Outbox(opts({})), error: ConfigError, message: /new Outbox\(store\) needs an OutboxStore, got object; pass sqlOutboxStore\(knex\), mongoOutboxStore\(client\.db\(name\)\) or new MemoryOutboxStore/ },
  { name: 'zero maxValueBytes', run: () => new Outbox(outboxStore, { maxValueBytes: 0 }), error: ConfigError, message: /Outbox option 'maxValueBytes' must be a positive integer number of bytes, got 0; match the broker's message size limit/ },
  { name: 'no transaction', run: () => outbox.publish(opts(undefined), { topic: 't', value: 'v' }), error: ConfigError, message: /outbox\.publish\(tx, messages\) needs the running transaction as its first argument, got undefined; call it inside db\.withTransaction/ },
  { name: 'a transaction that has ended', run: async () => { const tx = await outboxDb.begin(); await tx.commit(); return outbox.publish(tx, { topic: 't', value: 'v' }); }, error: TransactionStateError, message: /outbox\.publish\(\) is not allowed: the transaction is committed.*publish inside the withTransaction callback, before it returns/ },
  { name: 'message that is not an object', run: () => publish(null), error: ConfigError, message: /message 0 must be an object \{ topic, key\?, value, headers\? \}/ },
  { name: 'topic missing', run: () => publish({ value: 'v' }), error: ConfigError, message: /message 0 needs a topic name of 1 to 249 characters, got undefined/ },
  { name: 'empty topic', run: () => publish({ topic: '', value: 'v' }), error: ConfigError, message: /needs a topic name of 1 to 249 characters, got ""/ },
  { name: 'topic too long', run: () => publish({ topic: 't'.repeat(250), value: 'v' }), error: ConfigError, message: /needs a topic name of 1 to 249 characters/ },
  { name: 'value that is an object', run: () => publish({ topic: 't', value: { amount: 1 } }), error: ConfigError, message: /message 0\.value must be a string, a Buffer or null, got object; serialize objects first/ },
  { name: 'value that is a number', run: () => publish({ topic: 't', value: 42 }), error: ConfigError, message: /value must be a string, a Buffer or null, got number/ },
  { name: 'value missing', run: () => publish({ topic: 't' }), error: ConfigError, message: /value must be a string, a Buffer or null, got undefined/ },
  { name: 'key that is a number', run: () => publish({ topic: 't', key: 7, value: 'v' }), error: ConfigError, message: /message 0\.key must be a string or null, got number; convert it first/ },
  { name: 'header value that is a number', run: () => publish({ topic: 't', value: 'v', headers: { retries: 3 } }), error: ConfigError, message: /message 0\.headers\['retries'\] must be a string, got number; convert header values to strings/ },
  { name: 'header value that is a Buffer', run: () => publish({ topic: 't', value: 'v', headers: { raw: Buffer.from('x') } }), error: ConfigError, message: /headers\['raw'\] must be a string, got object/ },
  { name: 'headers that are a string', run: () => publish({ topic: 't', value: 'v', headers: 'trace=1' }), error: ConfigError, message: /message 0\.headers must be an object of string values such as \{ 'trace-id': 'abc' \}, got "trace=1"/ },
  { name: 'the outbox id header set by the caller', run: () => publish({ topic: 't', value: 'v', headers: { 'txkit-outbox-id': 'mine' } }), error: ConfigError, message: /headers\['txkit-outbox-id'\] is set by the outbox to each record's id; remove it from the message/ },
  { name: 'value over maxValueBytes', run: () => publish({ topic: 't', value: 'x'.repeat(17) }), error: ConfigError, message: /message 0\.value is 17 bytes, over maxValueBytes=16; store large payloads elsewhere and publish a reference/ },
  { name: 'the second message of a list is bad', run: () => publish([{ topic: 't', value: 'ok' }, { topic: 't', value: 1 }]), error: ConfigError, message: /message 1\.value must be a string/ },
]);

describe('outbox.publish: a rejected message writes nothing', () => {
  it('after every bad publish above, the outbox is still empty', async () => {
    await failureOf(() => publish([{ topic: 't', value: 'ok' }, { topic: 't', value: 1 }]));
    expect((await outboxStore.status()).partitions[0]?.published).toBe(0);
  });
});

const source = memorySource(new MemoryStore(), 'in');
const good: PipelineOptions<MemoryTxHandle> = { consumer: 'c', source, db: outboxDb, store: outboxStore, handler: noop };
const withOption = (o: object): (() => unknown) => () => pipeline({ ...good, ...o } as never);

table('pipeline options: ConfigError naming the option and the fix', () => [
  { name: 'no options', run: () => pipeline(opts(undefined)), error: ConfigError, message: /pipeline\(\) needs an options object \{ consumer, source, db, store, handler \}, got undefined/ },
  { name: 'consumer missing', run: withOption({ consumer: undefined }), error: ConfigError, message: /option 'consumer' must be a non-empty string.*use one stable name per logical consumer/ },
  { name: 'empty consumer', run: withOption({ consumer: '' }), error: ConfigError, message: /option 'consumer' must be a non-empty string/ },
  { name: 'source that is not a MessageSource', run: withOption({ source: { fetch: noop } }), error: ConfigError, message: /option 'source' must be a MessageSource with partitions\(\), fetch\(\) and waitFor\(\).*pass memorySource/ },
  { name: 'source without a name', run: withOption({ source: { ...source, name: '' } }), error: ConfigError, message: /option 'source' needs a non-empty 'name'/ },
  { name: 'db that is not a transaction context', run: withOption({ db: {} }), error: ConfigError, message: /option 'db' must be the TransactionContext of the store's database.*pass knexTransactions\(knex\)/ },
  { name: 'store that is not an OutboxStore', run: withOption({ store: {} }), error: ConfigError, message: /option 'store' must be an OutboxStore.*pass sqlOutboxStore\(knex\), mongoOutboxStore\(client\.db\(name\)\) or new MemoryOutboxStore/ },
  { name: 'handler that is not a function', run: withOption({ handler: 'process' }), error: ConfigError, message: /option 'handler' must be an async function \(message, \{ tx, outbox, decoded \}\), got "process"/ },
  { name: 'decode that is not a function', run: withOption({ decode: 'json' }), error: ConfigError, message: /option 'decode' must be a function \(message\) => decoded.*leave it out to get message\.value/ },
  { name: 'onError that is not a function', run: withOption({ onError: 'log' }), error: ConfigError, message: /option 'onError' must be a function \(err\) => void/ },
  { name: 'requireKey as a string', run: withOption({ requireKey: 'yes' }), error: ConfigError, message: /option 'requireKey' must be true or false, got "yes"/ },
  { name: 'zero batchSize', run: withOption({ batchSize: 0 }), error: ConfigError, message: /option 'batchSize' must be a positive integer, got 0/ },
  { name: 'fractional maxAttempts', run: withOption({ maxAttempts: 1.5 }), error: ConfigError, message: /option 'maxAttempts' must be a positive integer, got 1\.5/ },
  { name: 'negative maxValueBytes', run: withOption({ maxValueBytes: -1 }), error: ConfigError, message: /option 'maxValueBytes' must be a positive integer, got -1/ },
  { name: 'NaN pollIntervalMs', run: withOption({ pollIntervalMs: Number.NaN }), error: ConfigError, message: /option 'pollIntervalMs' must be a positive finite number of milliseconds, got NaN; leave it out for 1000/ },
  { name: 'zero takeOverAfterMs', run: withOption({ takeOverAfterMs: 0 }), error: ConfigError, message: /option 'takeOverAfterMs' must be a positive finite number of milliseconds, got 0; leave it out to never take a fenced partition back/ },
  { name: 'invalid retry policy', run: withOption({ retry: { deadlineMs: -1 } }), error: ConfigError, message: /option 'retry' is invalid: retry\.deadlineMs must be a positive number, got -1/ },
]);

const sink = memorySink(memoryTransactions({ store: new MemoryStore() }));
// Built, never connected: option checks run before any I/O.
const kafkaRelayContext = kafkaTransactions(kafka, { transactionalId: 'bad-input-relay' });

table('relay and store options: ConfigError', () => [
  { name: 'relay without a store', run: () => new OutboxRelay(opts({ sink })), error: ConfigError, message: /OutboxRelay needs a store \(sqlOutboxStore, MemoryOutboxStore, \.\.\.\)/ },
  { name: 'relay without a sink', run: () => new OutboxRelay(opts({ store: outboxStore })), error: ConfigError, message: /OutboxRelay needs a sink \(memorySink, kafkaSink, \.\.\.\)/ },
  { name: 'relay partition the store lacks', run: () => new OutboxRelay({ store: outboxStore, sink, partitions: [3] }), error: ConfigError, message: /relay partition 3 does not exist: the store has partitions 0\.\.0/ },
  { name: 'relay zero batchSize', run: () => new OutboxRelay({ store: outboxStore, sink, batchSize: 0 }), error: ConfigError, message: /OutboxRelay batchSize must be a positive number, got 0/ },
  { name: 'relay NaN pollIntervalMs', run: () => new OutboxRelay({ store: outboxStore, sink, pollIntervalMs: Number.NaN }), error: ConfigError, message: /OutboxRelay pollIntervalMs must be a positive number, got NaN/ },
  { name: 'sqlOutboxStore without knex', run: () => sqlOutboxStore(opts({})), error: ConfigError, message: /needs a knex instance/ },
  { name: 'sqlOutboxStore table prefix with a dash', run: () => sqlOutboxStore(knexSqlite, { tablePrefix: 'my-app' }), error: ConfigError, message: /tablePrefix must be letters, digits and underscores \(at most 41\), got 'my-app'/ },
  { name: 'sqlOutboxStore zero partitions', run: () => sqlOutboxStore(knexSqlite, { partitions: 0 }), error: ConfigError, message: /partitions must be an integer from 1 to 1024, got 0/ },
  { name: 'kafkaSink without options', run: () => kafkaSink(opts(undefined)), error: ConfigError, message: /kafkaSink needs options: \{ kafka, transactionalIdPrefix: 'orders-relay' \} or \{ kafka, context: kafkaTransactions\(\.\.\.\) \}/ },
  { name: 'relay without options', run: () => new OutboxRelay(opts(undefined)), error: ConfigError, message: /new OutboxRelay\(options\) needs an options object \{ store, sink \}, got undefined/ },
  { name: 'relay fractional batchSize', run: () => new OutboxRelay({ store: outboxStore, sink, batchSize: 1.5 }), error: ConfigError, message: /OutboxRelay batchSize must be a whole number of records, got 1\.5/ },
  { name: 'relay relayId not a string', run: () => new OutboxRelay({ store: outboxStore, sink, relayId: opts(5) }), error: ConfigError, message: /OutboxRelay relayId must be a non-empty string .* e\.g\. 'orders-relay'/ },
  { name: 'relay invalid retry', run: () => new OutboxRelay({ store: outboxStore, sink, retry: { maxAttempts: 0 } }), error: ConfigError, message: /OutboxRelay option 'retry' is invalid: retry\.maxAttempts must be a positive number, got 0/ },
  { name: 'relay logger without error()', run: () => new OutboxRelay({ store: outboxStore, sink, logger: opts({ error: 'loud' }) }), error: ConfigError, message: /relay option 'logger' must be an object with an error\(obj, msg\) method like pino's/ },
  { name: 'kafkaSink without a context or a prefix', run: () => kafkaSink(opts({})), error: ConfigError, message: /kafkaSink needs transactionalIdPrefix \(a producer per outbox partition, relays share the work\)/ },
  { name: 'kafkaSink with both a context and a prefix', run: () => kafkaSink(opts({ context: kafkaTransactions({ producer: () => ({}) } as never, { transactionalId: 'both' }), transactionalIdPrefix: 'p' })), error: ConfigError, message: /not both/ },
  { name: 'kafkaSink given an admin client instead of kafka', run: () => kafkaSink(opts({ context: kafkaRelayContext, admin: {} })), error: ConfigError, message: /kafkaSink needs kafka: the kafkajs Kafka instance .*\(the `admin` option is gone: pass the Kafka instance instead/ },
  { name: 'kafkaSink positionsTopic with a space', run: () => kafkaSink(opts({ context: kafkaRelayContext, kafka, positionsTopic: 'relay positions' })), error: ConfigError, message: /kafkaSink positionsTopic must be a Kafka topic name .* got "relay positions"/ },
  { name: 'kafkaSink zero positionsPartitions', run: () => kafkaSink(opts({ context: kafkaRelayContext, kafka, positionsPartitions: 0 })), error: ConfigError, message: /kafkaSink positionsPartitions must be a positive integer, got 0/ },
  { name: 'kafkaSink negative readTimeoutMs', run: () => kafkaSink(opts({ context: kafkaRelayContext, kafka, readTimeoutMs: -1 })), error: ConfigError, message: /kafkaSink readTimeoutMs must be a positive number of milliseconds, got -1/ },
  { name: 'kafkaSink platformatic with a context', run: () => kafkaSink(opts({ context: kafkaRelayContext, kafka, platformatic: { clientId: 'r', bootstrapBrokers: ['127.0.0.1:9'] } })), error: ConfigError, message: /`platformatic` sets up the per-partition producers of transactionalIdPrefix; with `context`, make it on @platformatic\/kafka instead/ },
  { name: 'kafkaSink platformatic with another client', run: () => kafkaSink(opts({ kafka, transactionalIdPrefix: 'p', client: 'confluent', platformatic: { clientId: 'r', bootstrapBrokers: ['127.0.0.1:9'] } })), error: ConfigError, message: /runs the producers on @platformatic\/kafka, but client is 'confluent'/ },
  { name: 'kafkaSink on @platformatic/kafka options given platformatic too', run: () => kafkaSink(opts({ kafka: { clientId: 'r', bootstrapBrokers: ['127.0.0.1:9'] }, transactionalIdPrefix: 'p', platformatic: { clientId: 'r', bootstrapBrokers: ['127.0.0.1:9'] } })), error: ConfigError, message: /`kafka` is @platformatic\/kafka connection options already, so everything runs on @platformatic\/kafka; leave `platformatic` out/ },
  { name: 'kafkaSink on @platformatic/kafka options with client kafkajs', run: () => kafkaSink(opts({ kafka: { clientId: 'r', bootstrapBrokers: ['127.0.0.1:9'] }, transactionalIdPrefix: 'p', client: 'kafkajs' })), error: ConfigError, message: /`kafka` is @platformatic\/kafka connection options, but client is 'kafkajs'/ },
  { name: 'memorySource without a topic', run: () => memorySource(new MemoryStore(), ''), error: ConfigError, message: /memorySource needs a topic name/ },
]);
