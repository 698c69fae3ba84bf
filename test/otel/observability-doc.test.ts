/**
 * Runs every ```ts block of docs/observability.md as a module, with
 * console.assert made to throw, so the guide's examples cannot drift from the code.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const guide = readFileSync(`${root}/docs/observability.md`, 'utf8');
const blocks = [...guide.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
const dir = `${root}/.test-results/observability-doc`;

describe('docs/observability.md examples', () => {
  beforeEach(() => {
    vi.spyOn(console, 'assert').mockImplementation((condition?: unknown, ...data: unknown[]) => {
      if (!condition) throw new Error(`observability guide assertion failed: ${data.map(String).join(' ') || '(no message)'}`);
    });
  });
  afterEach(() => vi.restoreAllMocks());

  it('has the tracing, outbox and logging examples', () => {
    expect(blocks).toHaveLength(3);
  });

  blocks.forEach((code, i) => {
    it(`example ${i + 1} runs and its assertions hold`, async () => {
      mkdirSync(dir, { recursive: true });
      const file = `${dir}/example-${i + 1}.ts`;
      writeFileSync(file, `${code}\nexport {};\n`);
      await import(/* @vite-ignore */ pathToFileURL(file).href);
    });
  });
});
