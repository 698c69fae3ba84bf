import { parseArgs } from 'node:util';
import { ConfigError } from '../core/index.js';

export interface CliConfig {
  command: string[];
  databaseUrl: string;
  tablePrefix: string;
  partitions: number;
  kafkaBrokers: string[];
  relayId: string;
  /** Whether --relay-id or TXKIT_RELAY_ID named it (outbox add-relay / remove-relay need that). */
  relayIdGiven: boolean;
  batchSize: number;
  /** Prefix of the relay's per-partition transactional ids: `<prefix>-<relayId>-<partition>`. */
  transactionalIdPrefix: string;
  /** Time to live of the relay's partition leases. */
  leaseTtlMs: number;
  pollIntervalMs: number;
  retentionMs: number;
  drain: boolean;
  json: boolean;
  help: boolean;
}

export const USAGE = `txkit: operate the txkit outbox

Usage:
  txkit migrate        [--database-url URL] [--table-prefix P] [--partitions N]
  txkit outbox status  [--database-url URL] [--table-prefix P] [--json]
  txkit outbox add-relay    --relay-id ID [--database-url URL] [--table-prefix P]
  txkit outbox remove-relay --relay-id ID [--database-url URL] [--table-prefix P]
  txkit relay          [--database-url URL] [--kafka-brokers H:P,...] [--relay-id ID]
                       [--table-prefix P] [--partitions N]
                       [--batch-size N] [--poll-interval-ms N] [--retention-ms N] [--drain]
                       [--transactional-id-prefix P] [--lease-ttl-ms N]

Options fall back to the environment: DATABASE_URL, KAFKA_BROKERS, TXKIT_TABLE_PREFIX,
TXKIT_PARTITIONS, TXKIT_RELAY_ID, TXKIT_TRANSACTIONAL_ID_PREFIX. DATABASE_URL is postgres://..., mysql://...,
sqlite:///path/to/file.db or mongodb://host/dbname?replicaSet=rs0 (the database is the
URL's path; --table-prefix is then the collections' prefix). 'relay' runs until SIGTERM/SIGINT (graceful: the broker
transaction in flight ends first); with --drain it sends what is pending and exits.
Run as many 'relay' processes of one relay id as you like: they split the outbox partitions
through leases in the database (a lease lapses --lease-ttl-ms after its holder stops renewing
it, default 15000), and each partition's broker transactions use the transactional id
<prefix>-<relay id>-<partition> (--transactional-id-prefix, default txkit-relay; the same in
every process), so a partition's new owner fences its former one at the broker.
Cleanup deletes a record only once every relay id known to the store has sent it: a relay id
becomes known when its relay first runs (or with 'outbox add-relay'), and stays known until
'outbox remove-relay'.`;

/** Parses argv and the environment; bad input gets ConfigError naming the option. */
export function parseCli(argv: readonly string[], env: NodeJS.ProcessEnv): CliConfig {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      'database-url': { type: 'string' },
      'table-prefix': { type: 'string' },
      partitions: { type: 'string' },
      'kafka-brokers': { type: 'string' },
      'relay-id': { type: 'string' },
      'batch-size': { type: 'string' },
      'poll-interval-ms': { type: 'string' },
      'retention-ms': { type: 'string' },
      'transactional-id-prefix': { type: 'string' },
      'lease-ttl-ms': { type: 'string' },
      drain: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const int = (name: string, raw: string | undefined, fallback: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new ConfigError(`--${name} must be a positive integer, got '${raw}'`);
    return n;
  };
  const nonEmpty = (name: string, raw: string | undefined, fallback: string): string => {
    if (raw === undefined) return fallback;
    if (raw.trim() === '') throw new ConfigError(`--${name} must not be empty`);
    return raw;
  };
  return {
    command: positionals,
    databaseUrl: values['database-url'] ?? env.DATABASE_URL ?? '',
    tablePrefix: values['table-prefix'] ?? env.TXKIT_TABLE_PREFIX ?? 'txkit_',
    partitions: int('partitions', values.partitions ?? env.TXKIT_PARTITIONS, 1),
    kafkaBrokers: (values['kafka-brokers'] ?? env.KAFKA_BROKERS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    relayId: values['relay-id'] ?? env.TXKIT_RELAY_ID ?? 'default',
    relayIdGiven: (values['relay-id'] ?? env.TXKIT_RELAY_ID) !== undefined,
    batchSize: int('batch-size', values['batch-size'], 500),
    transactionalIdPrefix: nonEmpty('transactional-id-prefix', values['transactional-id-prefix'] ?? env.TXKIT_TRANSACTIONAL_ID_PREFIX, 'txkit-relay'),
    leaseTtlMs: int('lease-ttl-ms', values['lease-ttl-ms'], 15_000),
    pollIntervalMs: int('poll-interval-ms', values['poll-interval-ms'], 1000),
    retentionMs: int('retention-ms', values['retention-ms'], 604_800_000),
    drain: values.drain ?? false,
    json: values.json ?? false,
    help: values.help ?? false,
  };
}

/** The MongoDB URL and database a DATABASE_URL names, or undefined for a SQL URL. */
export function mongoUrlOf(url: string): { url: string; database: string } | undefined {
  if (!url.startsWith('mongodb://') && !url.startsWith('mongodb+srv://')) return undefined;
  let database: string;
  try {
    database = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  } catch {
    throw new ConfigError(`invalid MongoDB URL '${url.replace(/\/\/[^@]*@/, '//***@')}': use mongodb://host:27017/dbname?replicaSet=rs0`);
  }
  if (database === '') {
    throw new ConfigError('the MongoDB URL names no database: add it as the path, e.g. mongodb://host:27017/app?replicaSet=rs0');
  }
  return { url, database };
}

/** A knex config from a database URL. */
export function knexConfigOf(url: string): { client: string; connection: unknown; useNullAsDefault?: boolean; pool?: { min: number; max: number } } {
  if (url === '') throw new ConfigError('no database: pass --database-url or set DATABASE_URL (postgres://, mysql://, sqlite:///file.db, mongodb://host/db)');
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return { client: 'pg', connection: url, pool: { min: 0, max: 4 } };
  if (url.startsWith('mysql://') || url.startsWith('mariadb://')) return { client: 'mysql2', connection: url.replace(/^mariadb:/, 'mysql:'), pool: { min: 0, max: 4 } };
  if (url.startsWith('sqlite://')) return { client: 'better-sqlite3', connection: { filename: url.slice('sqlite://'.length) }, useNullAsDefault: true };
  throw new ConfigError(`unsupported database URL '${url.replace(/\/\/[^@]*@/, '//***@')}': use postgres://, mysql://, sqlite:///path or mongodb://host/db`);
}
