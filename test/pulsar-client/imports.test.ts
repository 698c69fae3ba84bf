/**
 * The Pulsar client is a library of its own: it imports nothing of txkit outside
 * src/pulsar-client but the core's modules that import nothing themselves (listed
 * in SHARED). (Cycles anywhere under src/ are refused by `npm run check:cycles`.)
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';

const dir = fileURLToPath(new URL('../../src/pulsar-client/', import.meta.url));
/** The modules outside the client it may import: dependency-free ones of the core. */
const SHARED = ['../core/backoff.ts', '../core/error-brand.ts', '../core/error-codes.ts'].map((p) => path.resolve(dir, p));

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

describe('src/pulsar-client', () => {
  it('imports only its own modules, the shared dependency-free core modules, Node built-ins and protobufjs', () => {
    assert.ok(files.length > 10 && specifiers(path.join(dir, 'client.ts')).length > 0, 'the walk found the modules and their imports');
    for (const file of files) {
      for (const spec of specifiers(file)) {
        const where = path.relative(dir, file);
        if (spec.startsWith('.')) {
          const target = path.resolve(path.dirname(file), spec);
          if (SHARED.includes(target.replace(/\.js$/, '.ts'))) continue;
          assert.ok(!path.relative(dir, target).startsWith('..'), `${where} imports ${spec}, outside src/pulsar-client`);
        } else {
          assert.ok(spec.startsWith('node:') || spec === 'protobufjs/light.js', `${where} imports the package ${spec}`);
        }
      }
    }
  });

  it('shares only core modules that import nothing', () => {
    for (const file of SHARED) assert.deepEqual(specifiers(file), [], `${path.relative(dir, file)} imports nothing`);
  });
});
