// CPU time of the processes a bench drives, from /proc (Linux): this Node process, the
// Kafka broker's JVM, and every Postgres server process. On a machine where client, broker
// and database share the cores, the CPU each one spends per message says which of them a
// variant makes work harder, and whether a throughput ratio is set by CPU or by waiting.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/** CPU milliseconds (user + system) spent by each process group, and the wall time they were measured over. */
export interface CpuSample {
  wallMs: number;
  /** This process, and the other Node processes given to startCpuMeter. */
  node: number;
  kafka: number;
  postgres: number;
}

/** A started measurement: stop() returns what was spent since start. */
export interface CpuMeter {
  stop(): CpuSample;
}

const ticksPerSecond = ((): number => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/**
 * utime + stime of a process, plus cutime + cstime (its children that exited and were
 * reaped: a Postgres backend that ended between two samples is counted in the postmaster's).
 * 0 when the process is gone or /proc is not there.
 */
function processCpuMs(pid: number): number {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return 0;
  }
  // The command name is in parentheses and may hold spaces: the fields start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14-17 of proc(5) (utime, stime, cutime, cstime) are 11-14 here, counted from field 3.
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i] ?? 0), 0);
  return (ticks * 1000) / ticksPerSecond;
}

/** Pids of the processes whose command name (/proc/<pid>/comm) is `name`. */
function pidsNamed(name: string): number[] {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === name) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

/** Postgres: the postmaster, with reaped backends in its children's time, and every live backend. */
function postgresCpuMs(): number {
  return pidsNamed('postgres').reduce((sum, pid) => sum + processCpuMs(pid), 0);
}

/**
 * Starts measuring this process, the Kafka broker (its JVM's pid) and the local Postgres server; `nodePids`
 * are other Node processes of the run (a relay started as its own process), counted with this one in `node`.
 */
export function startCpuMeter(kafkaPid: number, nodePids: readonly number[] = []): CpuMeter {
  const t0 = performance.now();
  const node0 = process.cpuUsage();
  const others = (): number => nodePids.reduce((sum, pid) => sum + processCpuMs(pid), 0);
  const others0 = others();
  const kafka0 = processCpuMs(kafkaPid);
  const pg0 = postgresCpuMs();
  return {
    stop: () => {
      const node = process.cpuUsage(node0);
      return {
        wallMs: performance.now() - t0,
        node: (node.user + node.system) / 1000 + others() - others0,
        kafka: processCpuMs(kafkaPid) - kafka0,
        postgres: postgresCpuMs() - pg0,
      };
    },
  };
}
