/**
 * Helpers of the MongoDB adapter tests: a scripted server per file, driver
 * clients tuned for loopback, a session tracker, and the conformance subject.
 */
import { MongoClient } from 'mongodb';
import type { ClientSession, ClientSessionOptions, MongoClientOptions } from 'mongodb';
import type { ConformanceSubject } from '../../src/testing/index.js';
import type { MongoTransactionsOptions } from '../../src/adapters/mongo/index.js';
import { mongoTransactions } from '../../src/adapters/mongo/index.js';
import { ScriptedMongoServer } from './scripted-mongo-server.js';
import type { ReceivedCommand } from './scripted-mongo-server.js';

export { ScriptedMongoServer };

/**
 * A driver client for the scripted server. After a dropped connection the
 * driver waits for its monitor to see the server again; the monitor's
 * minimum interval is 500 ms by default, 10 ms here, so fault tests stay fast.
 */
export function scriptedClient(server: ScriptedMongoServer, options: MongoClientOptions = {}): MongoClient {
  return new MongoClient(server.uri, { minHeartbeatFrequencyMS: 10, serverSelectionTimeoutMS: 10_000, ...options });
}

/** A client stand-in that records every session txkit starts, so a test can check each one was ended. */
export function trackSessions(client: MongoClient): {
  client: { startSession(options?: ClientSessionOptions): ClientSession };
  sessions: ClientSession[];
} {
  const sessions: ClientSession[] = [];
  return {
    sessions,
    client: {
      startSession(options?: ClientSessionOptions): ClientSession {
        const s = client.startSession(options);
        sessions.push(s);
        return s;
      },
    },
  };
}

let seq = 0;
/** A collection name no other test uses. */
export function uniqueName(label: string): string {
  return `${label}_${process.pid}_${Date.now().toString(36)}_${seq++}`;
}

export interface KeyValueDoc {
  _id: string;
  value?: string;
  n?: number;
}

/**
 * The conformance subject: a key is a document's _id, its value a field;
 * reads go outside any session. The collection is made up front: concurrent
 * transactions that create one implicitly conflict on a real server.
 */
export async function conformanceSubject(
  client: MongoClient,
  dbName: string,
  options: MongoTransactionsOptions = {},
): Promise<ConformanceSubject<ClientSession>> {
  const coll = await client.db(dbName).createCollection<KeyValueDoc>(uniqueName('conformance'));
  return {
    context: mongoTransactions(client, options),
    write: async (tx, key, value) => {
      await coll.updateOne({ _id: key }, { $set: { value } }, { upsert: true, session: tx.handle });
    },
    read: async (key) => (await coll.findOne({ _id: key }))?.value,
  };
}

/** The data commands (not handshakes, heartbeats or session ends) the server saw for one collection. */
export function writesTo(server: ScriptedMongoServer, collection: string): ReceivedCommand[] {
  return server.received.filter((c) => ['insert', 'update', 'delete'].includes(c.name) && c.body[c.name] === collection);
}

/** lsid and txnNumber of a command: which server-side transaction it belongs to. */
export function txnOf(c: ReceivedCommand | undefined): string {
  return c === undefined ? 'none' : `${c.lsid ?? '-'}#${String(c.txnNumber)}`;
}

export { deferred } from '../support/deferred.js';
export type { Deferred } from '../support/deferred.js';
