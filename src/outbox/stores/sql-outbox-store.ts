import { EventEmitter } from 'node:events';
import type { KnexLike, PgPoolLike } from '../../adapters/sql/sql-types.js';
import { ConfigError } from '../../core/index.js';
import { InboxFencedError } from '../outbox-errors.js';
import { wait } from '../../core/backoff.js';
import { cachedUntilFailure } from '../../core/cached.js';
import type {
  DeadLetter,
  InboxMove,
  InboxPartition,
  LeaseMember,
  LeaseRequest,
  OutboxRecord,
  OutboxStatus,
  OutboxStore,
  PartitionLease,
  PendingRecord,
  RelayPosition,
} from '../outbox-types.js';
import { checkGroup, checkHeartbeat, checkLeaseRelease, checkLeaseRequest, checkMember, leaseExpiry, sortLeases, sortMembers } from './leases.js';
import { checkRelayId, deleteRelayed, positionsOf, relayStatuses, relayedByAll } from './relay-positions.js';
import type { RelayPositions } from './relay-positions.js';
import { sqlExecutorOf } from './sql-executor.js';
import type { SqlExecutor, SqlOutboxHandle, SqlRun, SqlSession } from './sql-executor.js';
import { MIGRATIONS, toBuffer } from './sql-schema.js';
import type { Dialect, Tables } from './sql-schema.js';

export type { KnexRawLike, PgQueryableLike, SqlOutboxHandle } from './sql-executor.js';

/** @deprecated use {@link txkit/sql!KnexLike | KnexLike}, the one type of a knex instance. */
export type KnexInstanceLike = KnexLike;

/** Options of {@link sqlOutboxStore}. */
export interface SqlOutboxStoreOptions {
  /** Prefix of the store's tables. @default 'txkit_' */
  tablePrefix?: string;
  /**
   * Outbox partitions. Publishers of one partition serialize from publish to
   * commit (that is what makes sequence order commit order); records go to a
   * partition by key hash, so per-key order holds. @default 1
   */
  partitions?: number;
}

const NOTIFY_CHANNEL = 'txkit_outbox';

/**
 * Outbox, inbox, dead letters and partition leases in a SQL database through
 * knex (Postgres, MySQL/MariaDB, SQLite) or a pg Pool (Postgres): one schema
 * and one set of statements whichever client runs them, so stores on knex and
 * on pg (and `txkit migrate`) share a database. Each partition has a counter row that a publishing
 * transaction updates and so locks until it commits: a record's sequence
 * number is therefore its commit order, without gaps, and the relay can read
 * `seq > position` without ever missing a row that commits late (the trap of
 * plain auto-increment ids, which become visible out of commit order).
 * Records are appended through the handle of the caller's transaction: a
 * knex transaction (`knexTransactions`) or, on Postgres, a pg PoolClient
 * (`pgTransactions`), whether the store itself runs on knex or on a pg Pool.
 */
export class SqlOutboxStore implements OutboxStore<SqlOutboxHandle> {
  readonly partitions: number;
  readonly dialect: Dialect;
  readonly tables: Tables;
  /**
   * Every table the store creates, the schema table first: dropping them in
   * this order (tests, examples, a retired store) never leaves a schema
   * version behind that claims tables already gone, so a drop cut short is
   * repaired by the next `migrate()`.
   */
  readonly tableNames: readonly string[];
  readonly #sql: SqlExecutor;
  readonly #local = new EventEmitter();
  /** knex transaction handles whose transaction already carries a NOTIFY (Postgres). */
  readonly #notified = new WeakSet<SqlOutboxHandle>();
  #listener: SqlSession | undefined;
  /** The LISTEN connection has delivered a notification since the last wait that ran its whole time (or none has run out since it was set up). */
  #heard = false;
  #listening: Promise<void> | undefined;
  #closed = false;

  /**
   * @param db - a knex instance, or a pg Pool (Postgres); told apart at run time.
   * @throws {@link txkit!ConfigError | ConfigError} for a pg.Client, anything
   *   that is neither, a knex client other than pg, mysql2 or better-sqlite3/sqlite3, or bad options.
   */
  constructor(db: KnexLike | PgPoolLike, options: SqlOutboxStoreOptions = {}) {
    const sql = sqlExecutorOf(db);
    const { tablePrefix = 'txkit_', partitions = 1 } = options;
    if (!/^[a-z_][a-z0-9_]{0,40}$/i.test(tablePrefix)) {
      throw new ConfigError(`tablePrefix must be letters, digits and underscores (at most 41), got '${tablePrefix}'`);
    }
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > 1024) {
      throw new ConfigError(`partitions must be an integer from 1 to 1024, got ${String(partitions)}`);
    }
    this.#sql = sql;
    this.partitions = partitions;
    this.dialect = sql.dialect;
    this.tables = {
      partitions: `${tablePrefix}outbox_partitions`,
      relays: `${tablePrefix}outbox_relays`,
      outbox: `${tablePrefix}outbox`,
      inbox: `${tablePrefix}inbox`,
      deadLetters: `${tablePrefix}dead_letters`,
      leases: `${tablePrefix}leases`,
      leaseMembers: `${tablePrefix}lease_members`,
      schema: `${tablePrefix}schema`,
    };
    const t = this.tables;
    this.tableNames = Object.freeze([t.schema, t.outbox, t.partitions, t.relays, t.inbox, t.deadLetters, t.leases, t.leaseMembers]);
    this.#local.setMaxListeners(0);
  }

  async migrate(): Promise<void> {
    // One migration at a time per store in this process; other processes are held off by #exclusive.
    this.#migrating = this.#migrating.catch(() => undefined).then(() => this.#migrate());
    return this.#migrating;
  }

  #migrating: Promise<void> = Promise.resolve();

  async #migrate(): Promise<void> {
    const t = this.tables;
    await this.#exclusive(async (run) => {
      await run(`create table if not exists ${t.schema} (component varchar(64) primary key, version integer not null)`);
      const { rows } = await run(`select version from ${t.schema} where component = ?`, ['outbox']);
      let version = Number((rows[0] as { version?: unknown } | undefined)?.version ?? 0);
      for (; version < MIGRATIONS.length; version++) {
        for (const statement of (MIGRATIONS[version] as (t: Tables, d: Dialect) => string[])(t, this.dialect)) {
          await run(statement);
        }
        await run(`${this.#insertIgnore()} into ${t.schema} (component, version) values ('outbox', 0)${this.#onConflictIgnore('component')}`);
        await run(`update ${t.schema} set version = ? where component = 'outbox' and version < ?`, [version + 1, version + 1]);
      }
      for (let p = 0; p < this.partitions; p++) {
        await run(`${this.#insertIgnore()} into ${t.partitions} (part, next_seq, relayed_seq) values (?, 0, 0)${this.#onConflictIgnore('part')}`, [p]);
      }
    });
  }

  async append(handle: SqlOutboxHandle, partition: number, records: readonly PendingRecord[]): Promise<void> {
    if (records.length === 0) return;
    const t = this.tables;
    if (this.dialect === 'postgres') return this.#appendPostgres(handle, partition, records);
    // Taking the partition's next numbers locks its counter row until this transaction ends.
    const updated = await this.#sql.runIn(handle, `update ${t.partitions} set next_seq = next_seq + ? where part = ?`, [records.length, partition]);
    if (updated.affected === 0) {
      throw new ConfigError(`outbox partition ${partition} does not exist in ${t.partitions}: run migrate() (txkit migrate) with partitions >= ${partition + 1}`);
    }
    const { rows } = await this.#sql.runIn(handle, `select next_seq from ${t.partitions} where part = ?`, [partition]);
    const last = Number((rows[0] as { next_seq: unknown }).next_seq);
    const first = last - records.length + 1;
    const values: unknown[] = [];
    for (const [i, r] of records.entries()) {
      values.push(partition, first + i, r.id, r.topic, r.key, r.value, JSON.stringify(r.headers), r.createdAt);
    }
    const placeholders = records.map(() => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
    await this.#sql.runIn(handle, `insert into ${t.outbox} (part, seq, id, topic, msg_key, msg_value, headers, created_at) values ${placeholders}`, values);
  }

  /**
   * Postgres in one round trip: take the numbers (locking the counter row),
   * insert the rows numbered from them and notify relays, as one statement.
   * A publish per consumed message is the common case in pipelines, so the
   * round trips of append are paid per message.
   */
  async #appendPostgres(handle: SqlOutboxHandle, partition: number, records: readonly PendingRecord[]): Promise<void> {
    const t = this.tables;
    const values: unknown[] = [records.length, partition];
    const rows = records.map((r, i) => {
      values.push(r.id, r.topic, r.key, r.value, JSON.stringify(r.headers), r.createdAt);
      return `(${i + 1 - records.length}, ?::varchar, ?::varchar, ?::text, ?::bytea, ?::text, ?::bigint)`;
    });
    // One notification per transaction wakes the relays; more would only cost the statement time.
    // A knex savepoint's handle is its own object, so a rolled-back savepoint never swallows the outer
    // one's. A pg client is the handle of its transaction and of all its savepoints alike, so there every
    // append notifies (Postgres delivers identical notifications of one transaction once).
    const once = typeof (handle as { raw?: unknown }).raw === 'function';
    const notify = !once || !this.#notified.has(handle);
    // The payload names the table: stores of other prefixes on the same database share the channel but not the wake-up.
    if (notify) values.push(NOTIFY_CHANNEL, `${t.outbox.toLowerCase()}:${partition}`);
    const { rows: result } = await this.#sql.runIn(
      handle,
      `with c as (update ${t.partitions} set next_seq = next_seq + ? where part = ? returning part, next_seq),
         ins as (insert into ${t.outbox} (part, seq, id, topic, msg_key, msg_value, headers, created_at)
                 select c.part, c.next_seq + v.d, v.id, v.topic, v.k, v.val, v.h, v.ts from c cross join (values ${rows.join(', ')}) as v(d, id, topic, k, val, h, ts)
                 returning 1)
         select (select count(*) from ins) as inserted${notify ? ', pg_notify(?, ?)' : ''}`,
      values,
    );
    if (Number((result[0] as { inserted?: unknown } | undefined)?.inserted ?? 0) !== records.length) {
      throw new ConfigError(`outbox partition ${partition} does not exist in ${t.partitions}: run migrate() (txkit migrate) with partitions >= ${partition + 1}`);
    }
    if (notify && once) this.#notified.add(handle);
  }

  /**
   * The outbox's id, kept in its schema table: the row `outbox-id`, whose
   * `version` column holds a random 31-bit number chosen by the first store
   * that asked (an insert that loses the race to another keeps the winner's).
   * Schemas of earlier versions get it on first use; no migration is needed.
   */
  outboxId(): Promise<string> {
    return this.#outboxId();
  }

  readonly #outboxId = cachedUntilFailure(() => this.#readOutboxId());

  async #readOutboxId(): Promise<string> {
    const t = this.tables;
    const candidate = 1 + Math.floor(Math.random() * 0x7ffffffe);
    await this.#sql.run(`${this.#insertIgnore()} into ${t.schema} (component, version) values ('outbox-id', ?)${this.#onConflictIgnore('component')}`, [candidate]);
    const { rows } = await this.#sql.run(`select version from ${t.schema} where component = 'outbox-id'`, []);
    const id = (rows[0] as { version?: unknown } | undefined)?.version;
    if (id === undefined || id === null) throw new ConfigError(`the outbox id row is missing from ${t.schema} right after it was written: run migrate() (txkit migrate)`);
    return `sql:${String(id)}`;
  }

  async read(partition: number, afterSeq: number, limit: number): Promise<OutboxRecord[]> {
    const { rows } = await this.#sql.run(
      `select part, seq, id, topic, msg_key, msg_value, headers, created_at from ${this.tables.outbox} where part = ? and seq > ? order by seq limit ?`,
      [partition, afterSeq, limit],
    );
    return rows.map((r) => {
      const row = r as Record<string, unknown>;
      return {
        id: String(row.id),
        partition: Number(row.part),
        seq: Number(row.seq),
        topic: String(row.topic),
        key: row.msg_key === null ? null : String(row.msg_key),
        value: toBuffer(row.msg_value),
        headers: JSON.parse(String(row.headers)) as Record<string, string>,
        createdAt: Number(row.created_at),
      };
    });
  }

  async markRelayed({ relayId, partition, seq }: RelayPosition): Promise<void> {
    const t = this.tables;
    checkRelayId(relayId, 'markRelayed');
    const now = Date.now();
    const moved = await this.#sql.run(`update ${t.relays} set relayed_seq = ?, updated_at = ? where relay_id = ? and part = ? and relayed_seq < ?`, [
      seq,
      now,
      relayId,
      partition,
      seq,
    ]);
    if (moved.affected > 0) return;
    // No row yet (or one already at or past seq, which the insert leaves alone): the relay id becomes known here.
    await this.#sql.run(
      `${this.#insertIgnore()} into ${t.relays} (relay_id, part, relayed_seq, updated_at) values (?, ?, ?, ?)${this.#onConflictIgnore('relay_id, part')}`,
      [relayId, partition, seq, now],
    );
  }

  async registerRelay(relayId: string): Promise<void> {
    checkRelayId(relayId, 'registerRelay');
    const now = Date.now();
    const values = Array.from({ length: this.partitions }, (_, p) => [relayId, p, 0, now]).flat();
    await this.#sql.run(
      `${this.#insertIgnore()} into ${this.tables.relays} (relay_id, part, relayed_seq, updated_at) values ${Array.from({ length: this.partitions }, () => '(?, ?, ?, ?)').join(', ')}${this.#onConflictIgnore('relay_id, part')}`,
      values,
    );
  }

  async removeRelay(relayId: string): Promise<boolean> {
    const result = await this.#sql.run(`delete from ${this.tables.relays} where relay_id = ?`, [checkRelayId(relayId, 'removeRelay')]);
    return result.affected > 0;
  }

  async cleanup(olderThanMs: number): Promise<number> {
    const t = this.tables;
    const cutoff = Date.now() - olderThanMs;
    // Positions only move forward and a relay id only appears at 0 or above what it sent, so a
    // bound read before the delete never covers a row some known relay id still has to send.
    return deleteRelayed(await this.#positions(), this.partitions, async (p, upTo) =>
      (await this.#sql.run(`delete from ${t.outbox} where part = ? and created_at < ? and seq <= ?`, [p, cutoff, upTo])).affected,
    );
  }

  async status(): Promise<OutboxStatus> {
    const t = this.tables;
    const { rows: parts } = await this.#sql.run(`select part, next_seq from ${t.partitions} order by part`);
    const positions = await this.#positions();
    const published = new Map(parts.map((r) => [Number((r as { part: unknown }).part), Number((r as { next_seq: unknown }).next_seq)]));
    const pendingByTopic: Record<string, number> = {};
    const now = Date.now();
    const partitions = [];
    for (const [partition, count] of published) {
      const relayed = relayedByAll(positions, partition) ?? 0;
      let oldest: number | undefined;
      if (count > relayed) {
        const { rows: groups } = await this.#sql.run(
          `select topic, count(*) as n, min(created_at) as oldest from ${t.outbox} where part = ? and seq > ? group by topic`,
          [partition, relayed],
        );
        for (const g of groups) {
          const row = g as { topic: unknown; n: unknown; oldest: unknown };
          const topic = String(row.topic);
          pendingByTopic[topic] = (pendingByTopic[topic] ?? 0) + Number(row.n);
          const o = Number(row.oldest);
          if (oldest === undefined || o < oldest) oldest = o;
        }
      }
      partitions.push({ partition, published: count, relayed, pending: count - relayed, oldestPendingAgeMs: oldest === undefined ? undefined : now - oldest });
    }
    const { rows: dead } = await this.#sql.run(`select count(*) as n from ${t.deadLetters}`);
    return {
      partitions,
      relays: relayStatuses(positions, published),
      pendingByTopic,
      deadLetters: Number((dead[0] as { n: unknown }).n),
      leases: await this.leases(),
    };
  }

  async #positions(): Promise<RelayPositions> {
    const { rows } = await this.#sql.run(`select relay_id, part, relayed_seq from ${this.tables.relays}`);
    return positionsOf(
      rows.map((r) => {
        const row = r as { relay_id: unknown; part: unknown; relayed_seq: unknown };
        return { relayId: String(row.relay_id), partition: Number(row.part), seq: Number(row.relayed_seq) };
      }),
    );
  }

  async inboxPosition(handle: SqlOutboxHandle | undefined, { consumer, source, partition }: InboxPartition): Promise<number | undefined> {
    const sql = `select next_offset from ${this.tables.inbox} where consumer = ? and source = ? and part = ?`;
    const bindings = [consumer, source, partition];
    const { rows } = await (handle === undefined ? this.#sql.run(sql, bindings) : this.#sql.runIn(handle, sql, bindings));
    return rows.length === 0 ? undefined : Number((rows[0] as { next_offset: unknown }).next_offset);
  }

  async advanceInbox(handle: SqlOutboxHandle, { consumer, source, partition, expected, next }: InboxMove): Promise<void> {
    const t = this.tables;
    const now = Date.now();
    let moved: number;
    if (expected === undefined) {
      const result = await this.#sql.runIn(
        handle,
        `${this.#insertIgnore()} into ${t.inbox} (consumer, source, part, next_offset, updated_at) values (?, ?, ?, ?, ?)${this.#onConflictIgnore('consumer, source, part')}`,
        [consumer, source, partition, next, now],
      );
      moved = result.affected;
    } else {
      // Compare-and-set: the stored position is this worker's fencing token.
      const result = await this.#sql.runIn(
        handle,
        `update ${t.inbox} set next_offset = ?, updated_at = ? where consumer = ? and source = ? and part = ? and next_offset = ?`,
        [next, now, consumer, source, partition, expected],
      );
      moved = result.affected;
    }
    if (moved !== 1) throw new InboxFencedError(consumer, source, partition, expected);
  }

  async addDeadLetter(handle: SqlOutboxHandle, letter: Omit<DeadLetter, 'createdAt'>): Promise<void> {
    await this.#sql.runIn(
      handle,
      `insert into ${this.tables.deadLetters} (consumer, source, part, msg_offset, msg_key, msg_value, headers, error, attempts, created_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [letter.consumer, letter.source, letter.partition, letter.offset, letter.key, letter.value, JSON.stringify(letter.headers), letter.error, letter.attempts, Date.now()],
    );
  }

  async deadLetters(consumer?: string): Promise<DeadLetter[]> {
    const where = consumer === undefined ? '' : ' where consumer = ?';
    const { rows } = await this.#sql.run(
      `select consumer, source, part, msg_offset, msg_key, msg_value, headers, error, attempts, created_at from ${this.tables.deadLetters}${where} order by id`,
      consumer === undefined ? [] : [consumer],
    );
    return rows.map((r) => {
      const row = r as Record<string, unknown>;
      return {
        consumer: String(row.consumer),
        source: String(row.source),
        partition: Number(row.part),
        offset: Number(row.msg_offset),
        key: row.msg_key === null ? null : String(row.msg_key),
        value: toBuffer(row.msg_value),
        headers: JSON.parse(String(row.headers)) as Record<string, string>,
        error: String(row.error),
        attempts: Number(row.attempts),
        createdAt: Number(row.created_at),
      };
    });
  }

  async heartbeat(member: { readonly group: string; readonly owner: string; readonly ttlMs: number }): Promise<LeaseMember[]> {
    const { group, owner, ttlMs } = checkHeartbeat(member, 'heartbeat');
    const t = this.tables;
    const now = Date.now();
    const expiresAt = leaseExpiry(now, ttlMs);
    const upsert = this.dialect === 'mysql' ? 'on duplicate key update expires_at = ?' : 'on conflict (grp, owner) do update set expires_at = ?';
    await this.#sql.run(`insert into ${t.leaseMembers} (grp, owner, expires_at) values (?, ?, ?) ${upsert}`, [group, owner, expiresAt, expiresAt]);
    await this.#sql.run(`delete from ${t.leaseMembers} where grp = ? and expires_at <= ?`, [group, now]);
    const { rows } = await this.#sql.run(`select owner, expires_at from ${t.leaseMembers} where grp = ? and expires_at > ?`, [group, now]);
    return sortMembers(
      rows.map((r) => {
        const row = r as { owner: unknown; expires_at: unknown };
        return { owner: String(row.owner), expiresAt: Number(row.expires_at) };
      }),
    );
  }

  async acquireLease(request: LeaseRequest): Promise<PartitionLease | undefined> {
    const { group, partition, owner, ttlMs } = checkLeaseRequest(request, 'acquireLease');
    const t = this.tables;
    const now = Date.now();
    const expiresAt = leaseExpiry(now, ttlMs);
    // One conditional UPDATE takes the lease, so of two workers asking at once only one matches.
    // The epoch is assigned first: MySQL assigns left to right, later expressions reading the new
    // values, so it must compare the owner before the owner changes.
    const take = async (): Promise<boolean> =>
      (
        await this.#sql.run(
        `update ${t.leases} set epoch = case when owner = ? then epoch else epoch + 1 end, owner = ?, expires_at = ? where grp = ? and part = ? and (owner = ? or owner = '' or expires_at <= ?)`,
          [owner, owner, expiresAt, group, partition, owner, now],
        )
      ).affected > 0;
    let taken = await take();
    if (!taken) {
      // No row yet, or held by another owner: a released row at epoch 0 (so the first owner gets
      // epoch 1) is added if missing, and the update tried once more.
      await this.#sql.run(`${this.#insertIgnore()} into ${t.leases} (grp, part, owner, epoch, expires_at) values (?, ?, '', 0, 0)${this.#onConflictIgnore('grp, part')}`, [
        group,
        partition,
      ]);
      taken = await take();
    }
    // The row now expires in the future and is ours, unless another owner holds it. A renewal in the
    // same millisecond changes nothing, which MySQL without CLIENT_FOUND_ROWS counts as no row: the
    // row then still shows this owner and this expiry.
    const { rows } = await this.#sql.run(`select owner, epoch, expires_at from ${t.leases} where grp = ? and part = ?`, [group, partition]);
    const row = rows[0] as { owner: unknown; epoch: unknown; expires_at: unknown } | undefined;
    if (row === undefined || String(row.owner) !== owner) return undefined;
    if (!taken && Number(row.expires_at) !== expiresAt) return undefined;
    return { group, partition, owner, epoch: Number(row.epoch), expiresAt: Number(row.expires_at) };
  }

  async releaseLease(lease: Pick<PartitionLease, 'group' | 'partition' | 'owner' | 'epoch'>): Promise<boolean> {
    const { group, partition, owner, epoch } = checkLeaseRelease(lease, 'releaseLease');
    const result = await this.#sql.run(`update ${this.tables.leases} set owner = '', expires_at = 0 where grp = ? and part = ? and owner = ? and epoch = ?`, [
      group,
      partition,
      owner,
      epoch,
    ]);
    return result.affected > 0;
  }

  async leaveGroup(member: { readonly group: string; readonly owner: string }): Promise<void> {
    const { group, owner } = checkMember(member, 'leaveGroup');
    const t = this.tables;
    await this.#sql.run(`delete from ${t.leaseMembers} where grp = ? and owner = ?`, [group, owner]);
    await this.#sql.run(`update ${t.leases} set owner = '', expires_at = 0 where grp = ? and owner = ?`, [group, owner]);
  }

  async leases(group?: string): Promise<PartitionLease[]> {
    const where = group === undefined ? '' : ' where grp = ?';
    const { rows } = await this.#sql.run(`select grp, part, owner, epoch, expires_at from ${this.tables.leases}${where}`, group === undefined ? [] : [checkGroup(group, 'leases')]);
    return sortLeases(
      rows.map((r) => {
        const row = r as { grp: unknown; part: unknown; owner: unknown; epoch: unknown; expires_at: unknown };
        return { group: String(row.grp), partition: Number(row.part), owner: String(row.owner), epoch: Number(row.epoch), expiresAt: Number(row.expires_at) };
      }),
    );
  }

  /** Wakes this store's waits (the relays in this process) at once; Outbox calls it after a publishing transaction commits. */
  notifyLocal(): void {
    this.#local.emit('published');
  }

  async waitForPublish(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.dialect === 'postgres' && this.#listener === undefined && !this.#closed) {
      // One LISTEN connection however many relay loops wait at once; a failed attempt is retried by the next wait.
      this.#listening ??= this.#listen().catch((err: unknown) => {
        this.#listening = undefined;
        throw err;
      });
      await this.#listening;
      // A read made while the LISTEN was being set up may have missed a commit it did not hear: something may have been published.
      if (this.#listener !== undefined) return;
    }
    const end = await wait(timeoutMs, signal, (wake) => {
      this.#local.on('published', wake);
      return () => this.#local.off('published', wake);
    });
    // Quiet for a whole wait: the LISTEN connection may have gone silent (a half-open socket, a proxy that drops
    // notifications), so it is trusted again only once it delivers one.
    if (end === 'elapsed') this.#heard = false;
  }

  /**
   * Postgres, once the LISTEN connection is up and has not stayed quiet for a
   * whole wait since it last delivered a notification: every publishing
   * transaction carries a NOTIFY, and a lost connection ends the waits.
   */
  hearsEveryCommit(): boolean {
    return this.#listener !== undefined && this.#heard && !this.#closed;
  }

  async close(): Promise<void> {
    this.#closed = true;
    // A LISTEN being set up finishes first, so its connection goes back to the pool below.
    await this.#listening?.catch(() => undefined);
    const listener = this.#listener;
    this.#listener = undefined;
    if (listener !== undefined) {
      let failure: unknown;
      try {
        await listener.run(`UNLISTEN ${NOTIFY_CHANNEL}`);
      } catch (err) {
        failure = err;
      }
      // A connection that could not UNLISTEN is discarded, which ends its LISTEN too.
      await listener.release(failure);
    }
    this.#local.emit('published');
  }

  /** Postgres: one connection LISTENs, so relays in other processes wake on commit, not on a poll. */
  async #listen(): Promise<void> {
    if (this.#listener !== undefined || this.#closed) return;
    const session = await this.#sql.session();
    if (session === undefined) return;
    const mine = `${this.tables.outbox.toLowerCase()}:`;
    session.onNotification((channel, payload) => {
      if (channel !== NOTIFY_CHANNEL) return;
      this.#heard = true;
      // A bare partition number comes from a publisher of an earlier txkit version, which did not name the table.
      if (payload === undefined || payload.startsWith(mine) || /^\d+$/.test(payload)) this.#local.emit('published');
    });
    // A LISTEN connection that breaks is discarded and the next wait listens on a new one; the waits in
    // progress end now, as a notification may have been lost with it.
    let lost: { reason: unknown } | undefined;
    session.onLost((reason) => {
      lost = { reason };
      if (this.#listener === session) {
        this.#listener = undefined;
        this.#listening = undefined;
      }
      void session.release();
      this.#local.emit('published');
    });
    try {
      await session.run(`LISTEN ${NOTIFY_CHANNEL}`);
    } catch (err) {
      await session.release(err);
      throw err;
    }
    // Lost between the LISTEN's answer and here: not adopted, and this wait fails so the relay backs off and listens again.
    if (lost !== undefined) throw lost.reason;
    this.#listener = session;
    this.#heard = true;
  }

  /**
   * Runs schema changes under a database-wide lock, so concurrent migrations
   * (several processes starting at once, stores on knex and on pg alike) do
   * not trip on each other. The lock is a session lock, so everything runs on
   * one dedicated connection.
   */
  async #exclusive(fn: (run: SqlRun) => Promise<void>): Promise<void> {
    const session = await this.#sql.session();
    if (session === undefined) return fn(this.#sql.run);
    const lockName = `${this.tables.schema}_migrate`;
    const [lock, unlock] =
      this.dialect === 'postgres'
        ? ['select pg_advisory_lock(hashtext(?))', 'select pg_advisory_unlock(hashtext(?))']
        : ['select get_lock(?, 300)', 'select release_lock(?)'];
    let failure: unknown;
    try {
      await session.run(lock, [lockName]);
      try {
        await fn(session.run);
      } finally {
        await session.run(unlock, [lockName]);
      }
    } catch (err) {
      failure = err;
      throw err;
    } finally {
      // After a failure the connection may still hold the lock: it is discarded, never pooled with it.
      await session.release(failure);
    }
  }

  #insertIgnore(): string {
    return this.dialect === 'mysql' ? 'insert ignore' : this.dialect === 'sqlite' ? 'insert or ignore' : 'insert';
  }

  #onConflictIgnore(columns: string): string {
    return this.dialect === 'postgres' ? ` on conflict (${columns}) do nothing` : '';
  }
}

/**
 * Creates the SQL store on a knex instance (Postgres, MySQL/MariaDB, SQLite);
 * call `migrate()` (or `txkit migrate`) once before use. Publish with the
 * transactions of `knexTransactions(knex)` (or, on Postgres, `pgTransactions`).
 * @throws {@link txkit!ConfigError | ConfigError} for anything but a knex instance or a pg Pool, or bad options.
 */
export function sqlOutboxStore(db: KnexLike, options?: SqlOutboxStoreOptions): SqlOutboxStore;
/**
 * Creates the SQL store on a pg Pool (Postgres, with only `pg` installed);
 * call `migrate()` (or `txkit migrate`) once before use. Publish with the
 * transactions of `pgTransactions(pool)`: the handle is the transaction's
 * `PoolClient`. The same tables as a store on knex, so both (and the CLI)
 * can share one database. One client of the pool stays checked out for
 * LISTEN while relays wait, until `close()`.
 * @throws {@link txkit!ConfigError | ConfigError} for a pg.Client (pass a Pool), or bad options.
 * @example
 * ```ts
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const store = sqlOutboxStore(pool);
 * await store.migrate();
 * const db = pgTransactions(pool);
 * const outbox = new Outbox(store);
 * await db.withTransaction(async (tx) => {
 *   await tx.handle.query('INSERT INTO orders (id, total) VALUES ($1, $2)', ['o-1', 42]);
 *   await outbox.publish(tx, { topic: 'order-events', key: 'o-1', value: 'created' });
 * });
 * ```
 */
export function sqlOutboxStore(pool: PgPoolLike, options?: SqlOutboxStoreOptions): SqlOutboxStore;
export function sqlOutboxStore(db: KnexLike | PgPoolLike, options?: SqlOutboxStoreOptions): SqlOutboxStore {
  return new SqlOutboxStore(db, options);
}
