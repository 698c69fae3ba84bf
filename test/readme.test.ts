/**
 * Runs every ```ts block of README.md as a module, with console.assert made to
 * throw, and type-checks them all with the project's compiler settings, so
 * the README's examples cannot drift from the code. Blocks that read
 * DATABASE_URL (the ones for package users, written for their own Postgres)
 * run on PGlite, started by pgliteTransactions.
 *
 * The README is also the package's page on the registry, where relative links
 * lead nowhere: every link to a docs page or an example must be absolute, to
 * the package's own files on unpkg, and name a file that ships in the tarball.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { pgliteTransactions } from 'txkit/testing';

const root = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(`${root}/README.md`, 'utf8');
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
const dir = `${root}/.test-results/readme`;
// Written up front, so the type check below sees every block whatever runs.
mkdirSync(dir, { recursive: true });
blocks.forEach((code, i) => writeFileSync(`${dir}/example-${i + 1}.ts`, `${code}\nexport {};\n`));

describe('README examples', () => {
  let pglite: Awaited<ReturnType<typeof pgliteTransactions>> | undefined;
  const savedUrl = process.env.DATABASE_URL;

  beforeAll(async () => {
    if (!blocks.some((code) => code.includes('DATABASE_URL'))) return;
    pglite = await pgliteTransactions();
    process.env.DATABASE_URL = pglite.url;
  });
  afterAll(async () => {
    if (savedUrl === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = savedUrl;
    await pglite?.close();
  });

  beforeEach(() => {
    vi.spyOn(console, 'assert').mockImplementation((condition?: unknown, ...data: unknown[]) => {
      if (!condition) throw new Error(`README assertion failed: ${data.map(String).join(' ') || '(no message)'}`);
    });
  });
  afterEach(() => vi.restoreAllMocks());

  it('has examples to run', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(7);
  });

  blocks.forEach((code, i) => {
    const title = code.split('\n').find((l) => l.startsWith('import'))?.trim() ?? `block ${i}`;
    it(`example ${i + 1} runs and its assertions hold (${title})`, async () => {
      await import(/* @vite-ignore */ pathToFileURL(`${dir}/example-${i + 1}.ts`).href);
    });
  });

  it('every example compiles against the public API with the project settings', () => {
    const config = `${dir}/tsconfig.json`;
    writeFileSync(config, JSON.stringify({ extends: '../../tsconfig.json', include: ['./**/*.ts'] }));
    try {
      execFileSync(process.execPath, [`${root}/node_modules/typescript/bin/tsc`, '-p', config], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
    } catch (err) {
      const out = err as { stdout?: string; stderr?: string };
      throw new Error(`README examples do not type-check:\n${out.stdout ?? ''}${out.stderr ?? ''}`);
    }
  }, 120_000);
});

describe('README links work from the registry page', () => {
  const pkg = JSON.parse(readFileSync(`${root}/package.json`, 'utf8')) as { name: string; homepage?: string };
  /** Where the README points for the package's own files: unpkg serves every file of the published tarball. */
  const base = `https://unpkg.com/${pkg.name}/`;
  const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] as string);
  const packed = new Set<string>();

  beforeAll(() => {
    // The files `npm pack` would put in the tarball (a listing: nothing is built or written).
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const [result] = JSON.parse(out.slice(out.indexOf('['))) as { files: { path: string }[] }[];
    for (const f of result?.files ?? []) packed.add(f.path);
  }, 60_000);

  it('has links to docs pages and examples', () => {
    expect(links.filter((l) => l.startsWith(`${base}docs/`)).length).toBeGreaterThanOrEqual(10);
    expect(links.filter((l) => l.startsWith(`${base}examples/`)).length).toBeGreaterThanOrEqual(3);
  });

  it(`links docs/ and examples/ with the absolute base ${base}, and no other link is relative`, () => {
    const wrong = links.filter((l) => !/^(https?:|mailto:|#)/.test(l) || (/(^|\/)(docs|examples)\//.test(l) && !l.startsWith(base)));
    expect(wrong).toEqual([]);
  });

  it('every linked docs page and example exists in the repository and ships in the package', () => {
    const files = links.filter((l) => l.startsWith(base)).map((l) => decodeURIComponent((l.slice(base.length).split('#')[0] as string)));
    const missing = files.filter((f) => !(existsSync(`${root}/${f}`) && statSync(`${root}/${f}`).isFile()));
    expect(missing, 'linked, but not a file of the repository').toEqual([]);
    const unpacked = files.filter((f) => !packed.has(f));
    expect(unpacked, 'linked, but not in the packed files (check "files" in package.json)').toEqual([]);
  });

  it('homepage is the docs index at the same base, and ships', () => {
    expect(pkg.homepage).toBe(`${base}docs/README.md`);
    expect(packed.has('docs/README.md')).toBe(true);
  });
});
