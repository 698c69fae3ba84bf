import { ConfigError, TxkitError } from '../core/index.js';
import { OutboxRelay, kafkaSink, mongoOutboxStore, sqlOutboxStore } from '../outbox/index.js';
import type { KafkaSinkClientLike, MongoDbLike, OutboxStatus, OutboxStore, PartitionLease } from '../outbox/index.js';
import type { MongoDriverClientLike } from '../adapters/mongo/mongo-types.js';
import type { KnexLike } from '../adapters/sql/sql-types.js';
import type { KafkaLike } from '../adapters/kafka/index.js';
import { USAGE, knexConfigOf, mongoUrlOf, parseCli } from './cli-config.js';
import type { CliConfig } from './cli-config.js';

interface Io {
  out: (line: string) => void;
  err: (text: string) => void;
  isTTY: boolean;
}

const defaultIo: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (text) => process.stderr.write(text),
  isTTY: Boolean(process.stderr.isTTY),
};

/** Runs the txkit command; resolves to the process exit code. */
export async function main(argv: readonly string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env, io: Io = defaultIo): Promise<number> {
  let config: CliConfig;
  try {
    config = parseCli(argv, env);
  } catch (err) {
    io.err(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}\n`);
    return 2;
  }
  const [cmd, sub] = config.command;
  if (config.help || cmd === undefined || cmd === 'help') {
    io.out(USAGE);
    return cmd === undefined && !config.help ? 2 : 0;
  }
  try {
    if (cmd === 'migrate') return await migrate(config, io);
    if (cmd === 'outbox' && sub === 'status') return await status(config, io);
    if (cmd === 'outbox' && (sub === 'add-relay' || sub === 'remove-relay')) return await relayId(config, io, sub);
    if (cmd === 'relay') return await relay(config, io);
    io.err(`unknown command '${config.command.join(' ')}'\n\n${USAGE}\n`);
    return 2;
  } catch (err) {
    const code = err instanceof TxkitError ? ` [${err.code}]` : '';
    io.err(`txkit ${config.command.join(' ')} failed${code}: ${err instanceof Error ? err.message : String(err)}\n`);
    return err instanceof ConfigError ? 2 : 1;
  }
}

/** The outbox store a command works on, with what to say about it and how to let it go. */
interface OpenStore {
  store: OutboxStore<unknown>;
  /** e.g. "postgres 'txkit_outbox'" or "mongodb 'txkit_outbox'". */
  label: string;
  /** Tables or collections the schema consists of. */
  parts: string[];
  close(): Promise<void>;
}

/** Opens the store DATABASE_URL names: a SQL database through knex, or MongoDB through its driver (loaded only then). */
async function openStore(config: CliConfig): Promise<OpenStore> {
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
  const db = knex(knexConfig);
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

async function withStore<T>(config: CliConfig, use: (opened: OpenStore) => Promise<T>): Promise<T> {
  const opened = await openStore(config);
  try {
    return await use(opened);
  } finally {
    await opened.close();
  }
}

function migrate(config: CliConfig, io: Io): Promise<number> {
  return withStore(config, async ({ store, label, parts }) => {
    await store.migrate();
    io.out(`migrated outbox schema ${label} (${config.partitions} partition(s)): ${parts.join(', ')}`);
    return 0;
  });
}

function status(config: CliConfig, io: Io): Promise<number> {
  return withStore(config, async ({ store }) => {
    const s = await store.status();
    if (config.json) io.out(JSON.stringify(s));
    else for (const line of renderStatus(s)) io.out(line);
    return 0;
  });
}

/**
 * Makes a relay id known to the store ahead of its first run (cleanup keeps
 * what it has not sent from then on), or retires one that is gone for good
 * (cleanup stops waiting for it).
 */
function relayId(config: CliConfig, io: Io, sub: 'add-relay' | 'remove-relay'): Promise<number> {
  if (!config.relayIdGiven) throw new ConfigError(`outbox ${sub} needs the relay id: pass --relay-id ID or set TXKIT_RELAY_ID`);
  return withStore(config, async ({ store, label }) => {
    if (sub === 'add-relay') {
      await store.registerRelay(config.relayId);
      io.out(`relay id '${config.relayId}' is known to ${label}: cleanup keeps every record it has not sent`);
      return 0;
    }
    if (await store.removeRelay(config.relayId)) {
      io.out(`relay id '${config.relayId}' removed from ${label}: cleanup no longer waits for it`);
      return 0;
    }
    const known = (await store.status()).relays.map((r) => r.relayId);
    io.err(`relay id '${config.relayId}' is not known to ${label}; known: ${known.length === 0 ? 'none' : known.join(', ')}\n`);
    return 1;
  });
}

/**
 * `txkit outbox status` as text: the backlog, each partition, each relay id,
 * the lag per topic, and the partition leases by group (owner, epoch, and
 * whether live, lapsed or released as of `now`).
 */
export function renderStatus(s: OutboxStatus, now: number = Date.now()): string[] {
  const pending = s.partitions.reduce((n, p) => n + p.pending, 0);
  const oldest = Math.max(0, ...s.partitions.map((p) => p.oldestPendingAgeMs ?? 0));
  const lines = [
    `pending: ${pending}   oldest pending: ${pending === 0 ? '-' : formatAge(oldest)}   dead letters: ${s.deadLetters}`,
    '',
    'partition  published  relayed  pending  oldest',
    ...s.partitions.map(
      (p) =>
        `${String(p.partition).padStart(9)}  ${String(p.published).padStart(9)}  ${String(p.relayed).padStart(7)}  ${String(p.pending).padStart(7)}  ${p.oldestPendingAgeMs === undefined ? '-' : formatAge(p.oldestPendingAgeMs)}`,
    ),
  ];
  lines.push('');
  if (s.relays.length === 0) lines.push('relays: none known yet (cleanup deletes nothing until a relay has run)');
  else {
    lines.push('relay id  pending  relayed per partition (cleanup keeps what any of them has not sent)');
    for (const r of s.relays) lines.push(`  ${r.relayId}  ${r.pending}  ${r.partitions.map((p) => `${p.partition}:${p.relayed}`).join(' ')}`);
  }
  const topics = Object.entries(s.pendingByTopic);
  if (topics.length > 0) lines.push('', 'topic lag (pending records)', ...topics.map(([t, n]) => `  ${t}: ${n}`));
  lines.push('', ...renderLeases(s.leases, now));
  return lines;
}

/** The partition leases, one block per group: partition, owner (`-` once released), epoch and state. */
function renderLeases(leases: readonly PartitionLease[], now: number): string[] {
  if (leases.length === 0) return ['leases: none (no relays or pipeline workers share partitions through this store)'];
  const lines = ['leases (relays and pipeline workers sharing partitions)'];
  const groups = new Map<string, PartitionLease[]>();
  for (const lease of leases) groups.set(lease.group, [...(groups.get(lease.group) ?? []), lease]);
  for (const [group, held] of groups) {
    const width = Math.max('owner'.length, ...held.map((l) => (l.owner === '' ? 1 : l.owner.length)));
    lines.push(`  ${group}`, `    partition  ${'owner'.padEnd(width)}  epoch  state`);
    for (const l of held) {
      const state = l.owner === '' ? 'released' : l.expiresAt > now ? `live, ${formatAge(l.expiresAt - now)} left` : `lapsed ${formatAge(now - l.expiresAt)} ago`;
      lines.push(`    ${String(l.partition).padStart(9)}  ${(l.owner === '' ? '-' : l.owner).padEnd(width)}  ${String(l.epoch).padStart(5)}  ${state}`);
    }
  }
  return lines;
}

async function relay(config: CliConfig, io: Io): Promise<number> {
  if (config.kafkaBrokers.length === 0) throw new ConfigError('relay needs a broker: pass --kafka-brokers host:port or set KAFKA_BROKERS');
  const { Kafka, logLevel } = (await import('kafkajs')) as unknown as {
    Kafka: new (c: unknown) => KafkaLike & KafkaSinkClientLike;
    logLevel: { NOTHING: number };
  };
  const kafka = new Kafka({ clientId: `txkit-relay-${config.relayId}`, brokers: config.kafkaBrokers, logLevel: logLevel.NOTHING });
  // A producer per outbox partition: relay processes of one relay id split the partitions through leases.
  const sink = kafkaSink({ kafka, transactionalIdPrefix: config.transactionalIdPrefix });
  const { store, label, close } = await openStore(config);
  const r = new OutboxRelay({
    store,
    sink,
    leases: { ttlMs: config.leaseTtlMs },
    relayId: config.relayId,
    batchSize: config.batchSize,
    pollIntervalMs: config.pollIntervalMs,
    retentionMs: config.retentionMs,
    onError: (err) => io.err(`relay: ${err instanceof Error ? err.message : String(err)}\n`),
  });
  try {
    if (config.drain) {
      const total = (await store.status()).partitions.reduce((n, p) => n + p.pending, 0);
      const progress = setInterval(() => io.err(progressLine(r.stats.relayed, total, io.isTTY)), 250);
      try {
        await r.drain();
      } finally {
        clearInterval(progress);
      }
      io.err(progressLine(r.stats.relayed, total, io.isTTY) + (io.isTTY ? '\n' : ''));
      io.out(`relayed ${r.stats.relayed} record(s) in ${r.stats.transactions} transaction(s)`);
      return 0;
    }
    r.start();
    io.out(`relay '${config.relayId}' running: ${config.kafkaBrokers.join(',')} <- ${label} (SIGTERM to stop)`);
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    await r.stop();
    io.out(`relay stopped after ${r.stats.relayed} record(s)`);
    return 0;
  } finally {
    await r.stop();
    await sink.close();
    await close();
  }
}

function progressLine(done: number, total: number, tty: boolean): string {
  const width = 30;
  const ratio = total === 0 ? 1 : Math.min(1, done / total);
  const bar = '#'.repeat(Math.round(ratio * width)).padEnd(width, '.');
  const text = `[${bar}] ${done}/${total} relayed (${Math.round(ratio * 100)}%)`;
  return tty ? `\r${text}` : `${text}\n`;
}

function formatAge(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60_000)} min`;
}
