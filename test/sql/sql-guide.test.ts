/**
 * Runs every ```ts block of docs/guides/sql.md as a module, with
 * console.assert made to throw, so the guide cannot drift from the adapters.
 * Postgres blocks (DATABASE_URL) run in a schema of their own, MariaDB blocks
 * (MYSQL_URL) in a database of their own; both are dropped afterwards.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import knex from 'knex';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { service } from '../support/services.js';
import { uniqueName } from './support/sql-fixtures.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const guide = readFileSync(`${root}/docs/guides/sql.md`, 'utf8');
const blocks = [...guide.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
const dir = `${root}/.test-results/sql-guide`;

const pgUrl = service('postgres');
const mysqlUrl = service('mysql');
const schema = uniqueName('guide');

describe('docs/guides/sql.md examples', () => {
  const saved = { DATABASE_URL: process.env.DATABASE_URL, MYSQL_URL: process.env.MYSQL_URL };

  beforeAll(async () => {
    if (pgUrl !== undefined) {
      const pool = new pg.Pool({ connectionString: pgUrl, max: 1 });
      await pool.query(`CREATE SCHEMA ${schema}`);
      await pool.end();
      const url = new URL(pgUrl);
      url.searchParams.set('options', `-c search_path=${schema}`);
      process.env.DATABASE_URL = url.toString();
    }
    if (mysqlUrl !== undefined) {
      const db = knex({ client: 'mysql2', connection: mysqlUrl });
      await db.raw(`CREATE DATABASE ${schema}`);
      await db.destroy();
      const url = new URL(mysqlUrl);
      url.pathname = `/${schema}`;
      process.env.MYSQL_URL = url.toString();
    }
  });

  afterAll(async () => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    if (pgUrl !== undefined) {
      const pool = new pg.Pool({ connectionString: pgUrl, max: 1 });
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await pool.end();
    }
    if (mysqlUrl !== undefined) {
      const db = knex({ client: 'mysql2', connection: mysqlUrl });
      await db.raw(`DROP DATABASE IF EXISTS ${schema}`);
      await db.destroy();
    }
  });

  beforeEach(() => {
    vi.spyOn(console, 'assert').mockImplementation((condition?: unknown, ...data: unknown[]) => {
      if (!condition) throw new Error(`guide assertion failed: ${data.map(String).join(' ') || '(no message)'}`);
    });
  });
  afterEach(() => vi.restoreAllMocks());

  it('has examples to run', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(8);
  });

  blocks.forEach((code, i) => {
    const needs = code.includes('MYSQL_URL') ? mysqlUrl : code.includes('DATABASE_URL') ? pgUrl : 'embedded';
    const title = code.split('\n').find((l) => l.includes("from 'txkit/sql'") || l.startsWith('const db') || l.startsWith('const pool'));
    it.skipIf(needs === undefined)(`example ${i + 1} runs and its assertions hold (${title?.trim() ?? ''})`, async () => {
      mkdirSync(dir, { recursive: true });
      const file = `${dir}/example-${i + 1}.ts`;
      writeFileSync(file, `${code}\nexport {};\n`);
      await import(/* @vite-ignore */ pathToFileURL(file).href);
    });
  });
});
