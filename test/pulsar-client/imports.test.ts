/**
 * The Pulsar client is a library of its own: it imports nothing of txkit outside
 * src/pulsar-client, and its modules, counting type-only imports, form no cycle.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';

const dir = fileURLToPath(new URL('../../src/pulsar-client/', import.meta.url));

function sources(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(path.join(folder, e.name)) : e.name.endsWith('.ts') ? [path.join(folder, e.name)] : [],
  );
}

/** Every `import ... from '...'` and `export ... from '...'` of `file`, type-only ones included. */
function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^(?:import|export)\s[^;]*?\sfrom\s+'([^']+)'/gm)].map((m) => m[1] as string);
}

const files = sources(dir);
const graph = new Map(
  files.map((file) => [
    file,
    specifiers(file)
      .filter((s) => s.startsWith('.'))
      .map((s) => path.resolve(path.dirname(file), s.replace(/\.js$/, '.ts'))),
  ]),
);

describe('src/pulsar-client', () => {
  it('imports only its own modules, Node built-ins and protobufjs', () => {
    assert.ok(files.length > 10 && graph.get(path.join(dir, 'client.ts'))?.length, 'the walk found the modules and their imports');
    for (const file of files) {
      for (const spec of specifiers(file)) {
        const where = path.relative(dir, file);
        if (spec.startsWith('.')) {
          const target = path.resolve(path.dirname(file), spec);
          assert.ok(!path.relative(dir, target).startsWith('..'), `${where} imports ${spec}, outside src/pulsar-client`);
        } else {
          assert.ok(spec.startsWith('node:') || spec === 'protobufjs/light.js', `${where} imports the package ${spec}`);
        }
      }
    }
  });

  it('has no import cycle, counting type-only imports', () => {
    const done = new Set<string>();
    const visit = (file: string, trail: string[]): void => {
      const at = trail.indexOf(file);
      assert.equal(at, -1, `import cycle: ${[...trail.slice(at), file].map((f) => path.relative(dir, f)).join(' -> ')}`);
      if (done.has(file)) return;
      for (const next of graph.get(file) ?? []) visit(next, [...trail, file]);
      done.add(file);
    };
    for (const file of files) visit(file, []);
  });
});
