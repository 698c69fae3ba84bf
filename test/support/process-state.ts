import { readFileSync } from 'node:fs';

/** The state letter of a process from /proc (Linux): 'T' is stopped, 'Z' a zombie. Throws when the process is gone. */
export function processState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}
