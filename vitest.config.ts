import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string): string => fileURLToPath(new URL(`./src/${p}`, import.meta.url));

export default defineConfig({
  // Examples import 'txkit/...' as users do; in this repo that means the sources.
  resolve: {
    alias: [
      { find: /^txkit$/, replacement: src('index.ts') },
      { find: /^txkit\/testing$/, replacement: src('testing/index.ts') },
      { find: /^txkit\/(memory|sql|mongo|kafka|pulsar)$/, replacement: src('adapters/$1/index.ts') },
      { find: /^txkit\/pulsar-client$/, replacement: src('pulsar-client/index.ts') },
      { find: /^txkit\/outbox$/, replacement: src('outbox/index.ts') },
      { find: /^txkit\/otel$/, replacement: src('otel/index.ts') },
      { find: /^txkit\/nestjs$/, replacement: src('nestjs/index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    testTimeout: 60_000,
    globalSetup: ['test/support/global-setup.ts'],
    hookTimeout: 300_000,
    reporters: ['default', 'json'],
    outputFile: { json: '.test-results/report.json' },
  },
});
