import { ConfigError } from '../../core/index.js';

/** The SQL dialects the store speaks. */
export type Dialect = 'postgres' | 'mysql' | 'sqlite';

/** Schema versions, applied in order; each step must be safe to run again. */
export const MIGRATIONS: readonly ((t: Tables, d: Dialect) => string[])[] = [
  (t, d) => {
    const blob = d === 'postgres' ? 'bytea' : d === 'mysql' ? 'longblob' : 'blob';
    const text = d === 'mysql' ? 'longtext' : 'text';
    const auto = d === 'postgres' ? 'bigserial primary key' : d === 'mysql' ? 'bigint auto_increment primary key' : 'integer primary key autoincrement';
    return [
      `create table if not exists ${t.partitions} (part integer primary key, next_seq bigint not null, relayed_seq bigint not null)`,
      `create table if not exists ${t.outbox} (part integer not null, seq bigint not null, id varchar(64) not null, topic varchar(255) not null, msg_key ${text}, msg_value ${blob}, headers ${text} not null, created_at bigint not null, primary key (part, seq))`,
      `create table if not exists ${t.inbox} (consumer varchar(191) not null, source varchar(191) not null, part integer not null, next_offset bigint not null, updated_at bigint not null, primary key (consumer, source, part))`,
      `create table if not exists ${t.deadLetters} (id ${auto}, consumer varchar(191) not null, source varchar(191) not null, part integer not null, msg_offset bigint not null, msg_key ${text}, msg_value ${blob}, headers ${text} not null, error ${text} not null, attempts integer not null, created_at bigint not null)`,
    ];
  },
  // Relay positions per relay id, so cleanup keeps what any relay id has not sent. The partitions'
  // relayed_seq (one mark for every relay id) is no longer read: a relay id appears here when it
  // runs, and until then cleanup deletes nothing.
  (t) => [
    `create table if not exists ${t.relays} (relay_id varchar(191) not null, part integer not null, relayed_seq bigint not null, updated_at bigint not null, primary key (relay_id, part))`,
  ],
  // Partition leases and the live members of lease groups, for workers that share partitions (the
  // relays of one relay id, the pipeline workers of one consumer). Owners and groups compare
  // exactly: on MySQL/MariaDB a binary collation, so 'Worker-A' never renews the lease of 'worker-a'.
  (t, d) => {
    const name = (length: number): string => (d === 'mysql' ? `varchar(${length}) character set utf8mb4 collate utf8mb4_bin` : `varchar(${length})`);
    return [
      `create table if not exists ${t.leases} (grp ${name(255)} not null, part integer not null, owner ${name(191)} not null, epoch bigint not null, expires_at bigint not null, primary key (grp, part))`,
      `create table if not exists ${t.leaseMembers} (grp ${name(255)} not null, owner ${name(191)} not null, expires_at bigint not null, primary key (grp, owner))`,
    ];
  },
];

/** Names of the store's tables, each the prefix plus a fixed suffix. */
export interface Tables {
  partitions: string;
  /** Relay positions: `(relay_id, part) -> relayed_seq`. */
  relays: string;
  outbox: string;
  inbox: string;
  deadLetters: string;
  /** Partition leases: `(grp, part) -> owner, epoch, expires_at`; a released lease has owner `''`. */
  leases: string;
  /** Live members of lease groups: `(grp, owner) -> expires_at`. */
  leaseMembers: string;
  schema: string;
}

/** The dialect of a knex client name. */
export function dialectOf(name: string | undefined): Dialect {
  if (name === 'postgresql' || name === 'postgres' || name === 'pg') return 'postgres';
  if (name === 'mysql' || name === 'mysql2') return 'mysql';
  if (name === 'sqlite3' || name === 'better-sqlite3') return 'sqlite';
  throw new ConfigError(`the SQL outbox store supports knex with pg, mysql2 and better-sqlite3/sqlite3, not '${String(name)}'`);
}

/** Rows changed by a write, from any of the three drivers' result shapes. */
export function affected(result: unknown): number {
  const r = result as { rowCount?: number; changes?: number; affectedRows?: number } | [{ affectedRows?: number }];
  if (Array.isArray(r)) return Number(r[0]?.affectedRows ?? 0);
  return Number(r.rowCount ?? r.changes ?? r.affectedRows ?? 0);
}

/** A Buffer from a binary column as the drivers return it. */
export function toBuffer(v: unknown): Buffer | null {
  if (v === null || v === undefined) return null;
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v);
  return Buffer.from(String(v));
}
