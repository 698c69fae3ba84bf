import { ConfigError, FencedError } from '../../core/index.js';
import { wait } from '../../core/backoff.js';
import type { PartitionLease, PartitionLeaseStore } from '../outbox-types.js';

/** What a worker of a partition knows of its lease: it may commit while `valid()`. */
export interface HeldLease {
  readonly group: string;
  readonly partition: number;
  readonly owner: string;
  /** The lease's epoch when this worker took it: it never changes while the worker runs. */
  readonly epoch: number;
  /**
   * True while the lease runs for longer than the safety margin on this
   * instance's clock and has not been lost to another instance. A worker
   * asked to stop keeps it until its work ends: the lease is given back after.
   */
  valid(): boolean;
  /** Throws FencedError when the lease is no longer valid: call it right before a commit. */
  check(): void;
}

/** Options of {@link PartitionLeases}. */
export interface PartitionLeasesOptions {
  store: PartitionLeaseStore;
  /** The group sharing the partitions, e.g. `relay/<relayId>`. */
  group: string;
  /** This instance's name in the group: unique per live instance. */
  owner: string;
  /** Partitions the group shares (this instance takes its share of them). */
  partitions: readonly number[];
  /** Time to live of a lease and of a membership; an instance that stops renewing loses its partitions after it. */
  ttlMs: number;
  /**
   * Works a partition while this instance holds its lease; `signal` aborts
   * when the lease is released or lost. Resolves when the work has stopped;
   * a partition whose work ends by itself is given back and taken again at a
   * later round if it is still this instance's share.
   */
  work(lease: HeldLease, signal: AbortSignal): Promise<void>;
  /** Errors the keeper survives (a round of heartbeats that failed). */
  onError(err: unknown): void;
}

interface Held {
  lease: PartitionLease;
  readonly view: HeldLease;
  readonly controller: AbortController;
  /** The worker, until it has stopped; set right after the worker starts. */
  done: Promise<void>;
  /** The work ended by itself: the lease is given back at the next round. */
  ended: boolean;
}

/** How a relay or pipeline takes the `leases` option: `false`, or `{ ttlMs?, owner? }`. */
export interface LeaseOption {
  /** Time to live of a lease and a membership, renewed every third of it. @default 15_000 */
  ttlMs?: number;
  /** This instance's name in its group: unique per live instance. @default host, process id and a random part */
  owner?: string;
}

/**
 * The `leases` option checked, with its defaults: undefined when turned off
 * (`false`), or when not given and `byDefault` is false.
 * @param where names the option in messages, e.g. `OutboxRelay leases`
 */
export function resolveLeaseOption(option: unknown, where: string, byDefault: boolean): { ttlMs: number; owner: string } | undefined {
  if (option === false || (option === undefined && !byDefault)) return undefined;
  if (option !== undefined && (typeof option !== 'object' || option === null || Array.isArray(option))) {
    throw new ConfigError(`${where} must be false or { ttlMs?, owner? }, got ${JSON.stringify(option)}`);
  }
  const given = (option ?? {}) as LeaseOption;
  const ttlMs = given.ttlMs ?? 15_000;
  if (!(typeof ttlMs === 'number' && Number.isFinite(ttlMs) && ttlMs >= 100)) {
    throw new ConfigError(`${where}.ttlMs must be a number of milliseconds of at least 100, got ${String(ttlMs)}`);
  }
  const owner = given.owner ?? ownerName();
  if (typeof owner !== 'string' || owner === '' || owner.length > 191) {
    throw new ConfigError(`${where}.owner must be a non-empty string of at most 191 characters, unique per live instance, got ${JSON.stringify(owner)}`);
  }
  return { ttlMs, owner };
}

/** A fresh owner name: host, process and a random part, so restarts never reuse one. */
export function ownerName(): string {
  const host = (process.env['HOSTNAME'] ?? '').slice(0, 60) || 'host';
  return `${host}:${process.pid}:${Math.random().toString(36).slice(2, 10)}`;
}

/**
 * Splits a group's partitions between its live instances through the lease
 * role of a store, and runs one worker per partition this instance holds.
 * Each round (a third of the lease's time to live) it beats its membership,
 * works out its share (partition `i` of the sorted list goes to live member
 * `i mod n`, members sorted by name), gives back what is no longer its share
 * (after the worker stopped), renews what it keeps, and takes what is its
 * share and free or lapsed. A partition held by an instance that died moves
 * once that instance's lease and membership lapse; one held by a live
 * instance moves when that instance sees the new member and gives it up.
 * While the views of the members differ for a round, a partition may have
 * no owner for that round; it never has two (the store's acquire is atomic,
 * and a worker commits only while its lease is valid on its own clock).
 */
export class PartitionLeases {
  readonly #o: PartitionLeasesOptions;
  readonly #held = new Map<number, Held>();
  /** Safety margin: a lease counts as lost this long before it lapses, so a worker stops before another may take it. */
  readonly #marginMs: number;
  /** The other instances' leases outside this instance's partitions last reported, so each mismatch is reported once. */
  #reportedForeign = '';

  /** `ttlMs` as {@link resolveLeaseOption} checked it (the relay and the pipeline pass it through that). */
  constructor(options: PartitionLeasesOptions) {
    this.#o = options;
    this.#marginMs = Math.min(2_000, options.ttlMs / 5);
  }

  /** Partitions this instance holds now, ascending. */
  get owned(): number[] {
    return [...this.#held.keys()].sort((a, b) => a - b);
  }

  /** The leases this instance holds now. */
  get leases(): PartitionLease[] {
    return [...this.#held.values()].map((h) => h.lease).sort((a, b) => a.partition - b.partition);
  }

  /** Runs rounds until `signal` aborts, then stops every worker and leaves the group (giving its leases back). */
  async run(signal: AbortSignal): Promise<void> {
    const { ttlMs, onError } = this.#o;
    try {
      while (!signal.aborted) {
        await this.round().catch(onError);
        await wait(ttlMs / 3, signal);
      }
    } finally {
      await this.#stopAll();
      await this.#o.store.leaveGroup({ group: this.#o.group, owner: this.#o.owner }).catch(onError);
    }
  }

  /** One round: membership, share, give back, renew, take. Exposed for tests that step it. */
  async round(): Promise<void> {
    const { store, group, owner, partitions, ttlMs } = this.#o;
    const members = (await store.heartbeat({ group, owner, ttlMs })).map((m) => m.owner);
    if (!members.includes(owner)) members.push(owner);
    members.sort();
    const me = members.indexOf(owner);
    const share = new Set(partitions.filter((_, i) => i % members.length === me));
    if (members.length > 1) await this.#checkSamePartitions();

    for (const [partition, held] of [...this.#held]) {
      if (held.ended || !share.has(partition)) {
        await this.#giveBack(partition, held);
        continue;
      }
      const renewed = await store.acquireLease({ group, partition, owner, ttlMs });
      if (renewed === undefined || renewed.epoch !== held.lease.epoch) {
        // Another instance holds it now (this one missed renewals for longer than the lease lives).
        held.controller.abort(new FencedError(`lease of partition ${partition} in '${group}' was lost to another instance`));
        this.#held.delete(partition);
        await held.done;
        continue;
      }
      held.lease = renewed;
    }
    for (const partition of share) {
      if (this.#held.has(partition)) continue;
      const lease = await store.acquireLease({ group, partition, owner, ttlMs });
      if (lease !== undefined) this.#start(lease);
    }
  }

  /**
   * Every instance of a group must share the same partitions: the share is
   * worked out from this instance's list, so instances given different lists
   * leave some partitions to nobody. An instance sees it when another holds
   * a partition outside its own list, and reports it (once per change).
   */
  async #checkSamePartitions(): Promise<void> {
    const { store, group, owner, partitions } = this.#o;
    const mine = new Set(partitions);
    const now = Date.now();
    const foreign = (await store.leases(group)).filter((l) => l.owner !== '' && l.owner !== owner && l.expiresAt > now && !mine.has(l.partition));
    const seen = foreign.map((l) => `${l.owner}:${l.partition}`).join(',');
    if (seen === this.#reportedForeign) return;
    this.#reportedForeign = seen;
    if (foreign.length === 0) return;
    const named = foreign.slice(0, 5).map((l) => `partition ${l.partition} (held by '${l.owner}')`);
    this.#o.onError(
      new ConfigError(
        `lease group '${group}': other instances hold ${named.join(', ')}${foreign.length > 5 ? ' and more' : ''}, outside the partitions of ` +
          `instance '${owner}' [${partitions.join(', ')}]. Every instance of a group must be given the same partitions (or none, for all of them): ` +
          'the share of each is worked out from its own list, so with different lists some partitions have no owner and are not worked',
      ),
    );
  }

  #start(lease: PartitionLease): void {
    const controller = new AbortController();
    const margin = this.#marginMs;
    const held: Held = {
      lease,
      controller,
      ended: false,
      view: {
        group: lease.group,
        partition: lease.partition,
        owner: lease.owner,
        epoch: lease.epoch,
        // Lost to another instance, or about to lapse. A worker asked to stop (this instance leaving, or giving the
        // partition back) still holds the lease until its work ends, so the transaction in flight may commit.
        valid: () => !(controller.signal.reason instanceof FencedError) && Date.now() < held.lease.expiresAt - margin,
        check: () => {
          if (held.view.valid()) return;
          throw new FencedError(
            `partition ${lease.partition} of '${lease.group}': this instance's lease (epoch ${lease.epoch}) is no longer valid, ` +
              'so it commits nothing more there; another instance may own the partition now',
          );
        },
      },
      done: Promise.resolve(),
    };
    held.done = this.#o
      .work(held.view, controller.signal)
      .catch(this.#o.onError)
      .finally(() => {
        held.ended = true;
      });
    this.#held.set(lease.partition, held);
  }

  async #giveBack(partition: number, held: Held): Promise<void> {
    held.controller.abort();
    await held.done;
    this.#held.delete(partition);
    await this.#o.store.releaseLease({ group: this.#o.group, partition, owner: this.#o.owner, epoch: held.lease.epoch });
  }

  async #stopAll(): Promise<void> {
    for (const held of this.#held.values()) held.controller.abort();
    await Promise.all([...this.#held.values()].map((h) => h.done));
    this.#held.clear();
  }
}
