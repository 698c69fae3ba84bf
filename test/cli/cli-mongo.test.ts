/**
 * `txkit migrate` and `txkit outbox status` on a MongoDB DATABASE_URL, run
 * through the real driver against the scripted replica-set primary.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/index.js';
import { ScriptedMongoServer } from '../mongo/mongo-support.js';

describe('txkit CLI on MongoDB', () => {
  let server: ScriptedMongoServer;
  beforeAll(async () => {
    server = await new ScriptedMongoServer().start();
  });
  afterAll(async () => {
    await server.stop();
  });

  const run = async (args: string[]): Promise<{ code: number; lines: string[] }> => {
    const lines: string[] = [];
    const io = { out: (l: string) => void lines.push(l), err: (t: string) => void lines.push(t), isTTY: false };
    return { code: await main(args, {}, io), lines };
  };
  const urlOf = (database: string): string => {
    const url = new URL(server.uri);
    url.pathname = `/${database}`;
    return url.toString();
  };

  it('migrates the collections and reports their status', async () => {
    const url = urlOf('clidb');
    const migrated = await run(['migrate', '--database-url', url, '--partitions', '3', '--table-prefix', 'cli_']);
    expect(migrated.code, migrated.lines.join('\n')).toBe(0);
    expect(migrated.lines.at(-1)).toMatch(/^migrated outbox schema mongodb 'cli_outbox' \(3 partition\(s\)\): cli_outbox, .*cli_inbox/);
    // Twice is fine: the schema is versioned.
    expect((await run(['migrate', '--database-url', url, '--partitions', '3', '--table-prefix', 'cli_'])).code).toBe(0);
    const status = await run(['outbox', 'status', '--database-url', url, '--partitions', '3', '--table-prefix', 'cli_', '--json']);
    expect(status.code, status.lines.join('\n')).toBe(0);
    const parsed = JSON.parse(status.lines.at(-1) as string) as { partitions: { pending: number }[]; deadLetters: number };
    expect(parsed.partitions).toHaveLength(3);
    expect(parsed.partitions.every((p) => p.pending === 0)).toBe(true);
    expect(parsed.deadLetters).toBe(0);
  });

  it('refuses a MongoDB URL without a database, saying how to name one', async () => {
    const { code, lines } = await run(['migrate', '--database-url', urlOf('')]);
    expect(code).toBe(2);
    expect(lines.at(-1)).toMatch(/names no database: add it as the path, e\.g\. mongodb:\/\/host:27017\/app\?replicaSet=rs0/);
  });
});
