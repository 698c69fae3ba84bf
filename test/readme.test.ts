/**
 * Runs every ```ts block of README.md as a module, with console.assert made to
 * throw, so the README's examples cannot drift from the code.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(`${root}/README.md`, 'utf8');
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
const dir = `${root}/.test-results/readme`;

describe('README examples', () => {
  beforeEach(() => {
    vi.spyOn(console, 'assert').mockImplementation((condition?: unknown, ...data: unknown[]) => {
      if (!condition) throw new Error(`README assertion failed: ${data.map(String).join(' ') || '(no message)'}`);
    });
  });
  afterEach(() => vi.restoreAllMocks());

  it('has examples to run', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(5);
  });

  blocks.forEach((code, i) => {
    const title = code.split('\n').find((l) => l.startsWith('import'))?.trim() ?? `block ${i}`;
    it(`example ${i + 1} runs and its assertions hold (${title})`, async () => {
      mkdirSync(dir, { recursive: true });
      const file = `${dir}/example-${i + 1}.ts`;
      writeFileSync(file, `${code}\nexport {};\n`);
      await import(/* @vite-ignore */ pathToFileURL(file).href);
    });
  });
});
