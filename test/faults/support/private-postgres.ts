/**
 * A throwaway PostgreSQL cluster for tests that stop, crash or restart the
 * server: built with the machine's own initdb/pg_ctl into a temp directory,
 * listening on a free loopback port, trust authentication. It never touches
 * any other cluster. When the tests run as root the server runs as the
 * `postgres` system user (Postgres refuses to run as root).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Where the binaries are, or undefined with the reason they are not usable. */
export function findPostgresBinaries(): { bin: string } | { reason: string } {
  const root = '/usr/lib/postgresql';
  let versions: string[];
  try {
    versions = fs.readdirSync(root).filter((v) => /^\d+$/.test(v));
  } catch {
    return { reason: `no PostgreSQL server binaries under ${root}` };
  }
  versions.sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = path.join(root, v, 'bin');
    if (fs.existsSync(path.join(bin, 'initdb')) && fs.existsSync(path.join(bin, 'pg_ctl'))) return { bin };
  }
  return { reason: `no initdb/pg_ctl in ${root}/*/bin` };
}

export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** `pg_ctl stop -m immediate`: every server process is killed without a checkpoint, as in a crash. */
  crash(): Promise<void>;
  /** Starts the server again on the same data directory and port (it runs crash recovery first). */
  start(): Promise<void>;
  /** Stops the server and deletes its files. */
  destroy(): Promise<void>;
}

/** Creates and starts a private cluster; `settings` are extra server settings (`-c name=value`). */
export async function startPrivatePostgres(settings: Readonly<Record<string, string | number>> = {}): Promise<PrivatePostgres> {
  const found = findPostgresBinaries();
  if ('reason' in found) throw new Error(found.reason);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'txkit-pg-'));
  const dataDir = path.join(root, 'data');
  const socketDir = path.join(root, 'socket');
  const logFile = path.join(root, 'postgres.log');
  fs.mkdirSync(socketDir);
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    for (const p of [root, socketDir]) fs.chownSync(p, Number(stdout.trim()), Number(gid.trim()));
  }
  const tool = (name: string, args: string[]): Promise<{ stdout: string; stderr: string }> =>
    asRoot
      ? run('runuser', ['-u', 'postgres', '--', path.join(found.bin, name), ...args], { timeout: 120_000 })
      : run(path.join(found.bin, name), args, { timeout: 120_000 });

  await tool('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const port = await freePort();
  const options = [
    `-p ${port}`,
    '-c listen_addresses=127.0.0.1',
    `-c unix_socket_directories=${socketDir}`,
    '-c max_connections=50',
    '-c shared_buffers=32MB',
    '-c fsync=on',
    '-c full_page_writes=on',
    ...Object.entries(settings).map(([name, value]) => `-c ${name}=${value}`),
  ].join(' ');
  const start = async (): Promise<void> => {
    await tool('pg_ctl', ['-D', dataDir, '-l', logFile, '-o', options, '-w', '-t', '60', 'start']);
  };
  let running = false;
  const handle: PrivatePostgres = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    crash: async () => {
      await tool('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', '-t', '60', 'stop']);
      running = false;
    },
    start: async () => {
      await start();
      running = true;
    },
    destroy: async () => {
      if (running) await tool('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', '-t', '60', 'stop']).catch(() => undefined);
      running = false;
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
  try {
    await handle.start();
  } catch (err) {
    const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(-4000) : '';
    fs.rmSync(root, { recursive: true, force: true });
    throw new Error(`the private Postgres cluster did not start: ${(err as Error).message}\n${log}`);
  }
  return handle;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
