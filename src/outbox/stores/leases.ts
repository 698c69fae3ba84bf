import { ConfigError } from '../../core/index.js';
import type { LeaseMember, LeaseRequest, PartitionLease } from '../outbox-types.js';

/** Longest lease group name the stores keep (the SQL store's key column). */
export const MAX_LEASE_GROUP_LENGTH = 255;

/** Longest lease owner name the stores keep (the SQL store's key column). */
export const MAX_LEASE_OWNER_LENGTH = 191;

/** A lease as a store keeps it, without the group and partition that locate it. */
export interface StoredLease {
  readonly owner: string;
  readonly epoch: number;
  readonly expiresAt: number;
}

/** A worker of a lease group, as heartbeat and leaveGroup take it. */
export interface LeaseMemberRequest {
  readonly group: string;
  readonly owner: string;
}

/** What releaseLease takes: the lease as its owner last got it. */
export type LeaseRelease = Pick<PartitionLease, 'group' | 'partition' | 'owner' | 'epoch'>;

/** A lease request as stores take it, checked field by field; see {@link checkGroup} and the others for each rule. */
export function checkLeaseRequest(request: unknown, method: string): LeaseRequest {
  const r = fieldsOf(request, method, 'a lease request { group, partition, owner, ttlMs }');
  return { group: checkGroup(r.group, method), partition: checkPartition(r.partition, method), owner: checkOwner(r.owner, method), ttlMs: checkTtl(r.ttlMs, method) };
}

/** A heartbeat as stores take it: `{ group, owner, ttlMs }`, checked field by field. */
export function checkHeartbeat(member: unknown, method: string): LeaseMemberRequest & { readonly ttlMs: number } {
  const m = fieldsOf(member, method, 'a member { group, owner, ttlMs }');
  return { group: checkGroup(m.group, method), owner: checkOwner(m.owner, method), ttlMs: checkTtl(m.ttlMs, method) };
}

/** A member leaving its group, as stores take it: `{ group, owner }`, checked field by field. */
export function checkMember(member: unknown, method: string): LeaseMemberRequest {
  const m = fieldsOf(member, method, 'a member { group, owner }');
  return { group: checkGroup(m.group, method), owner: checkOwner(m.owner, method) };
}

/** A lease to give up, as stores take it: `{ group, partition, owner, epoch }`, checked field by field. */
export function checkLeaseRelease(lease: unknown, method: string): LeaseRelease {
  const l = fieldsOf(lease, method, 'the lease { group, partition, owner, epoch } it got');
  const epoch = l.epoch;
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0) {
    throw new ConfigError(`outbox store ${method}() needs the lease's epoch as a non-negative integer, got ${describe(epoch)}; pass the epoch acquireLease returned`);
  }
  return { group: checkGroup(l.group, method), partition: checkPartition(l.partition, method), owner: checkOwner(l.owner, method), epoch };
}

/** A lease group name: a non-empty string of at most {@link MAX_LEASE_GROUP_LENGTH} characters. */
export function checkGroup(group: unknown, method: string): string {
  if (typeof group !== 'string' || group === '' || group.length > MAX_LEASE_GROUP_LENGTH) {
    throw new ConfigError(
      `outbox store ${method}() needs the lease group as a non-empty string of at most ${MAX_LEASE_GROUP_LENGTH} characters, got ${describe(group)}; ` +
        "name the workers that share partitions, e.g. 'relay/<relayId>' or 'pipeline/<consumer>'",
    );
  }
  return group;
}

/** A lease owner (one worker instance): a non-empty string of at most {@link MAX_LEASE_OWNER_LENGTH} characters. */
export function checkOwner(owner: unknown, method: string): string {
  if (typeof owner !== 'string' || owner === '' || owner.length > MAX_LEASE_OWNER_LENGTH) {
    throw new ConfigError(
      `outbox store ${method}() needs the lease owner as a non-empty string of at most ${MAX_LEASE_OWNER_LENGTH} characters, got ${describe(owner)}; ` +
        'give each worker instance a name of its own, e.g. host and process id',
    );
  }
  return owner;
}

/**
 * A leased partition: a non-negative safe integer. Not bounded by the store's
 * outbox partitions, since a pipeline leases the partitions of its source.
 */
export function checkPartition(partition: unknown, method: string): number {
  if (typeof partition !== 'number' || !Number.isSafeInteger(partition) || partition < 0) {
    throw new ConfigError(`outbox store ${method}() needs the partition as a non-negative integer, got ${describe(partition)}`);
  }
  return partition;
}

/** A lease's time to live: a positive finite number of milliseconds whose expiry from now is still a safe integer. */
export function checkTtl(ttlMs: unknown, method: string): number {
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0 || !Number.isSafeInteger(leaseExpiry(Date.now(), ttlMs))) {
    throw new ConfigError(`outbox store ${method}() needs ttlMs as a positive number of milliseconds, got ${describe(ttlMs)}; it is how long the lease or membership lasts unless renewed`);
  }
  return ttlMs;
}

/** When something taken at `now` for `ttlMs` lapses: epoch milliseconds, rounded up to a whole one (stores keep integers). */
export function leaseExpiry(now: number, ttlMs: number): number {
  return Math.ceil(now + ttlMs);
}

/**
 * The outcome of a lease request at `now` given the partition's current
 * lease (undefined: it never had one): the new lease, or undefined while
 * another owner holds it. The first owner gets epoch 1; a renewal by the
 * owner keeps the epoch; a lease that lapsed or was released goes to the
 * next owner one epoch higher.
 */
export function takeLease(current: StoredLease | undefined, request: LeaseRequest, now: number): PartitionLease | undefined {
  const { group, partition, owner } = request;
  const expiresAt = leaseExpiry(now, request.ttlMs);
  if (current === undefined) return { group, partition, owner, epoch: 1, expiresAt };
  if (current.owner === owner) return { group, partition, owner, epoch: current.epoch, expiresAt };
  if (current.owner !== '' && current.expiresAt > now) return undefined;
  return { group, partition, owner, epoch: current.epoch + 1, expiresAt };
}

/** Leases sorted by group (by UTF-16 code units, the same in every store and database collation), then partition. */
export function sortLeases(leases: PartitionLease[]): PartitionLease[] {
  return leases.sort((a, b) => compareStrings(a.group, b.group) || a.partition - b.partition);
}

/** Members sorted by owner (by UTF-16 code units, the same in every store and database collation). */
export function sortMembers(members: LeaseMember[]): LeaseMember[] {
  return members.sort((a, b) => compareStrings(a.owner, b.owner));
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function fieldsOf(value: unknown, method: string, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null) throw new ConfigError(`outbox store ${method}() needs ${what}, got ${describe(value)}`);
  return value as Record<string, unknown>;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
  if (typeof value === 'number') return String(value);
  return value === null ? 'null' : typeof value;
}
