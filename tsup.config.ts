import { defineConfig } from 'tsup';

// One entry per public subpath. Splitting keeps one copy of
// the core shared by all entries, in ESM and CJS alike, so `instanceof
// TxkitError` holds across `txkit` and `txkit/<backend>`.
export const entries = {
  index: 'src/index.ts',
  memory: 'src/adapters/memory/index.ts',
  mongo: 'src/adapters/mongo/index.ts',
  testing: 'src/testing/index.ts',
  sql: 'src/adapters/sql/index.ts',
  kafka: 'src/adapters/kafka/index.ts',
  pulsar: 'src/adapters/pulsar/index.ts',
  'pulsar-client': 'src/pulsar-client/index.ts',
  outbox: 'src/outbox/index.ts',
  otel: 'src/otel/index.ts',
  nestjs: 'src/nestjs/index.ts',
  cli: 'src/cli/index.ts',
};

export default defineConfig({
  entry: entries,
  format: ['esm', 'cjs'],
  dts: true,
  splitting: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  treeshake: true,
});
