/**
 * Runs every ```ts block of the docs pages below as a module, with
 * console.assert made to throw, and type-checks them all with the project's
 * compiler settings, so the docs cannot drift from the code.
 * Blocks that are fragments, not programs, are fenced as ```typescript and
 * not run. A block that imports from 'vitest' is a test file (the conformance
 * suite example): it is loaded while tests are collected, so the tests it
 * declares run as tests of this file. All blocks here need no server: they
 * use the memory backend, SQLite or PGlite.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const PAGES: Record<string, number> = {
  'getting-started.md': 4,
  'errors-and-retries.md': 2,
  'propagation-and-hooks.md': 3,
  'testing.md': 5,
};

const outDir = `${root}/.test-results/docs`;

describe.each(Object.entries(PAGES))('docs/%s examples', (page, atLeast) => {
  const text = readFileSync(`${root}/docs/${page}`, 'utf8');
  const blocks = [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  const dir = `${outDir}/${page.replace(/\.md$/, '')}`;
  // Written up front, so the type check below sees every block whatever runs.
  mkdirSync(dir, { recursive: true });
  blocks.forEach((code, i) => writeFileSync(`${dir}/example-${i + 1}.ts`, `${code}\nexport {};\n`));

  beforeEach(() => {
    vi.spyOn(console, 'assert').mockImplementation((condition?: unknown, ...data: unknown[]) => {
      if (!condition) throw new Error(`docs/${page} assertion failed: ${data.map(String).join(' ') || '(no message)'}`);
    });
  });
  afterEach(() => vi.restoreAllMocks());

  it(`has at least ${atLeast} examples to run`, () => {
    expect(blocks.length).toBeGreaterThanOrEqual(atLeast);
  });

  blocks.forEach((code, i) => {
    const file = `${dir}/example-${i + 1}.ts`;
    if (/from 'vitest'/.test(code)) {
      describe(`example ${i + 1} (a test file)`, async () => {
        await import(/* @vite-ignore */ pathToFileURL(file).href);
      });
      return;
    }
    const title = code.split('\n').find((l) => l.startsWith('import'))?.trim();
    it(`example ${i + 1} runs and its assertions hold (${title ?? 'no title'})`, async () => {
      await import(/* @vite-ignore */ pathToFileURL(file).href);
    });
  });
});

describe('docs examples type-check', () => {
  it('every ```ts block compiles against the public API with the project settings', () => {
    const config = `${outDir}/tsconfig.json`;
    writeFileSync(config, JSON.stringify({ extends: '../../tsconfig.json', include: ['./**/*.ts'] }));
    try {
      execFileSync(process.execPath, [`${root}/node_modules/typescript/bin/tsc`, '-p', config], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
    } catch (err) {
      const out = err as { stdout?: string; stderr?: string };
      throw new Error(`docs examples do not type-check:\n${out.stdout ?? ''}${out.stderr ?? ''}`);
    }
  }, 120_000);
});

/**
 * The per-backend tables of docs/errors-and-retries.md, checked against the
 * classifiers they describe, so the page cannot claim a retry the code does
 * not make (or miss one it does).
 */
describe('docs/errors-and-retries.md tables match the classifiers', () => {
  const page = readFileSync(`${root}/docs/errors-and-retries.md`, 'utf8');
  const section = (title: string): string => {
    const start = page.indexOf(`### ${title}`);
    const end = page.indexOf('\n### ', start + 1);
    return page.slice(start, end === -1 ? undefined : end);
  };
  const rows = (text: string): { cells: string[]; kind: string }[] =>
    text
      .split('\n')
      .filter((l) => l.startsWith('| ') && !l.startsWith('| ---'))
      .map((l) => {
        const cells = l.split(' | ').map((c) => c.replace(/^\| |\s*\|$/g, '').trim());
        return { cells, kind: cells.at(-1) ?? '' };
      });

  it('Kafka: every row of KAFKA_ERROR_TABLE is listed once, with its verdict', async () => {
    const { KAFKA_ERROR_TABLE } = await import('../src/adapters/kafka/kafka-errors.js');
    const table = rows(section('Kafka'));
    for (const [name, rule] of Object.entries(KAFKA_ERROR_TABLE)) {
      const matching = table.filter((r) => (r.cells[0] ?? '').includes(`\`${name}\` (${rule.code})`));
      expect(matching, name).toHaveLength(1);
      expect(matching[0]?.kind.startsWith(rule.kind === 'transient' ? 'transient' : 'fatal'), `${name}: ${matching[0]?.kind}`).toBe(true);
      if (rule.kind === 'fenced') expect(matching[0]?.kind).toContain('FencedError');
    }
  });

  it('Pulsar: exactly the retriable server errors are in the transient row', async () => {
    const { PULSAR_SERVER_ERROR_NAMES, PulsarServerError } = await import('../src/adapters/pulsar/pulsar-errors.js');
    const transientRow = rows(section('Pulsar')).find((r) => r.kind === 'transient' && r.cells[0]?.startsWith('`PulsarServerError`'));
    expect(transientRow).toBeDefined();
    const listed = new Set([...(transientRow?.cells[0] ?? '').matchAll(/`(\w+)`/g)].map((m) => m[1]).filter((n) => n !== 'PulsarServerError'));
    const retriable = PULSAR_SERVER_ERROR_NAMES.filter((_, code) => new PulsarServerError(code, '', 'X').retriable);
    expect([...listed].sort()).toEqual([...retriable].sort());
  });

  it('SQL: every Postgres SQLSTATE and MySQL/MariaDB error number marked transient is transient, with the named reason', async () => {
    const { sqlTransientReason } = await import('../src/adapters/sql/sql-errors.js');
    const table = rows(section('SQL'));
    let checked = 0;
    for (const { cells } of table.filter((r) => r.kind === 'transient')) {
      const [what = '', reason = ''] = cells;
      const expected = reason.split(',')[0]?.trim();
      if (what.startsWith('Postgres SQLSTATE `')) {
        for (const m of what.matchAll(/`([0-9A-Z]{5})`/g)) {
          expect(sqlTransientReason({ code: m[1] }), m[1]).toBe(expected);
          checked += 1;
        }
      } else if (/^(MySQL|MariaDB)/.test(what)) {
        for (const m of what.matchAll(/`(\d{4})`/g)) {
          expect(sqlTransientReason({ errno: Number(m[1]) }), m[1]).toBe(expected);
          checked += 1;
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(12);
    // And nothing else of those families is transient.
    expect(sqlTransientReason({ code: '23505' })).toBeUndefined();
    expect(sqlTransientReason({ errno: 1062 })).toBeUndefined();
  });
});

/**
 * One naming in every page and in the README: a transaction context is `ctx`
 * (or `<something>Ctx` where a snippet has several), a transaction is `tx`
 * (or `<something>Tx` for a nested scope beside it). The driver's own
 * objects in before/after comparisons (a MongoDB `session`, a `driver`) keep
 * their names.
 */
describe('docs name contexts ctx and transactions tx', () => {
  const pages = [
    'README.md',
    ...readdirSync(`${root}/docs`).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`),
    ...readdirSync(`${root}/docs/guides`).filter((f) => f.endsWith('.md')).map((f) => `docs/guides/${f}`),
  ];
  const isCtx = (name: string): boolean => /^(ctx|[a-z]\w*Ctx)$/.test(name);
  const isTx = (name: string): boolean => /^(tx|[a-z]\w*Tx)$/.test(name);
  const NATIVE = new Set(['session', 'driver']);
  const lineOf = (text: string, index: number): number => text.slice(0, index).split('\n').length;

  it.each(pages)('%s', (page) => {
    const text = readFileSync(`${root}/${page}`, 'utf8');
    const wrong: string[] = [];
    const factory = /(?:const|let)\s+(\w+)\s*=\s*(?:await\s+)?(?:(?:memory|pg|knex|mongo|kafka|pulsar)Transactions|createTransactionContext)\(/g;
    for (const m of text.matchAll(factory)) {
      if (!isCtx(m[1] as string)) wrong.push(`line ${lineOf(text, m.index)}: context named '${m[1]}' (use ctx, or <name>Ctx)`);
    }
    for (const m of text.matchAll(/(\w+)\s*\.(withTransaction|begin)\(/g)) {
      const receiver = m[1] as string;
      if (!NATIVE.has(receiver) && !isCtx(receiver)) {
        wrong.push(`line ${lineOf(text, m.index)}: ${m[2]}() called on '${receiver}' (a context is ctx, or <name>Ctx)`);
      }
    }
    for (const m of text.matchAll(/(\w+)\s*\.withTransaction\(\s*(?:async\s*)?(?:\(([^)]*)\)|(\w+)\s*=>)/g)) {
      if (NATIVE.has(m[1] as string)) continue;
      const param = (m[2] ?? m[3] ?? '').split(/[,:]/)[0]?.trim() ?? '';
      if (param !== '' && !isTx(param)) wrong.push(`line ${lineOf(text, m.index)}: transaction named '${param}' (use tx, or <name>Tx)`);
    }
    for (const m of text.matchAll(/(?:const|let)\s+(\w+)\s*=\s*await\s+\w+\.begin\(/g)) {
      if (!isTx(m[1] as string)) wrong.push(`line ${lineOf(text, m.index)}: transaction named '${m[1]}' (use tx, or <name>Tx)`);
    }
    expect(wrong, page).toEqual([]);
  });
});
