/**
 * Runs every ```ts block of docs/guides/mongo.md as a module against a fresh
 * scripted server (its URI in MONGODB_URI), with console.assert made to
 * throw, so the guide's examples cannot drift from the adapter.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ScriptedMongoServer } from './scripted-mongo-server.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const guide = readFileSync(`${root}/docs/guides/mongo.md`, 'utf8');
const blocks = [...guide.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
const dir = `${root}/.test-results/mongo-guide`;

describe('docs/guides/mongo.md examples', () => {
  let server: ScriptedMongoServer;
  const savedUri = process.env.MONGODB_URI;

  beforeEach(async () => {
    server = await new ScriptedMongoServer().start();
    process.env.MONGODB_URI = server.uri;
    vi.spyOn(console, 'assert').mockImplementation((condition?: unknown, ...data: unknown[]) => {
      if (!condition) throw new Error(`guide assertion failed: ${data.map(String).join(' ') || '(no message)'}`);
    });
  });

  afterEach(async () => {
    vi.restoreAllMocks();
    if (savedUri === undefined) delete process.env.MONGODB_URI;
    else process.env.MONGODB_URI = savedUri;
    await server.stop();
  });

  it('has examples to run', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(2);
  });

  blocks.forEach((code, i) => {
    it(`example ${i + 1} runs against the scripted server and its assertions hold`, async () => {
      mkdirSync(dir, { recursive: true });
      const file = `${dir}/example-${i + 1}.ts`;
      writeFileSync(file, `${code}\nexport {};\n`);
      await import(/* @vite-ignore */ pathToFileURL(file).href);
      expect(server.commands('commitTransaction').length, 'the example committed through the server').toBeGreaterThan(0);
    });
  });
});
