import { ConfigError } from '../core/index.js';
import type { OutboxStatus, PartitionLease } from '../outbox/index.js';
import { ExitCode, USAGE, commandOf, helpOf, packageVersion, parseCli, specOf, usageOf } from './cli-config.js';
import type { CliConfig, CliIo } from './cli-config.js';
import { describeFailure } from './explain.js';
import { relay } from './relay.js';
import { withStore } from './store.js';

export { ExitCode } from './cli-config.js';
export type { CliIo } from './cli-config.js';

const defaultIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (text) => process.stderr.write(text),
  isTTY: Boolean(process.stderr.isTTY),
};

/** Runs the txkit command; resolves to the process exit code ({@link ExitCode}). */
export async function main(argv: readonly string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env, io: CliIo = defaultIo): Promise<number> {
  let config: CliConfig;
  try {
    config = parseCli(argv, env);
  } catch (err) {
    io.err(`txkit: ${err instanceof Error ? err.message : String(err)}\n\n${usageOf(commandOf(argv))}\n`);
    return ExitCode.USAGE;
  }
  const spec = specOf(config.command);
  if (config.version) {
    io.out(packageVersion());
    return ExitCode.OK;
  }
  if (config.help) {
    io.out(spec === undefined ? USAGE : helpOf(spec));
    return ExitCode.OK;
  }
  if (spec === undefined) {
    io.err(`${USAGE}\n`);
    return ExitCode.USAGE;
  }
  const [cmd, sub] = config.command;
  try {
    if (cmd === 'migrate') return await migrate(config, io);
    if (cmd === 'outbox' && sub === 'status') return await status(config, io);
    if (cmd === 'outbox' && (sub === 'add-relay' || sub === 'remove-relay')) return await relayId(config, io, sub);
    return await relay(config, io);
  } catch (err) {
    io.err(describeFailure(config.command, err, config));
    return err instanceof ConfigError ? ExitCode.USAGE : ExitCode.FAILURE;
  }
}

function migrate(config: CliConfig, io: CliIo): Promise<number> {
  return withStore(config, io, async ({ store, label, parts }) => {
    await store.migrate();
    io.out(`migrated outbox schema ${label} (${config.partitions} partition(s)): ${parts.join(', ')}`);
    return ExitCode.OK;
  });
}

function status(config: CliConfig, io: CliIo): Promise<number> {
  return withStore(config, io, async ({ store }) => {
    const s = await store.status();
    if (config.json) io.out(JSON.stringify(s));
    else for (const line of renderStatus(s)) io.out(line);
    return ExitCode.OK;
  });
}

/**
 * Makes a relay id known to the store ahead of its first run (cleanup keeps
 * what it has not sent from then on), or retires one that is gone for good
 * (cleanup stops waiting for it).
 */
function relayId(config: CliConfig, io: CliIo, sub: 'add-relay' | 'remove-relay'): Promise<number> {
  if (!config.relayIdGiven) throw new ConfigError(`outbox ${sub} needs the relay id: pass --relay-id ID or set TXKIT_RELAY_ID`);
  return withStore(config, io, async ({ store, label }) => {
    if (sub === 'add-relay') {
      await store.registerRelay(config.relayId);
      io.out(`relay id '${config.relayId}' is known to ${label}: cleanup keeps every record it has not sent`);
      return ExitCode.OK;
    }
    if (await store.removeRelay(config.relayId)) {
      io.out(`relay id '${config.relayId}' removed from ${label}: cleanup no longer waits for it`);
      return ExitCode.OK;
    }
    const known = (await store.status()).relays.map((r) => r.relayId);
    io.err(`relay id '${config.relayId}' is not known to ${label}; known: ${known.length === 0 ? 'none' : known.join(', ')}\n`);
    return ExitCode.FAILURE;
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

function formatAge(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60_000)} min`;
}
