import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    testTimeout: 60_000,
    globalSetup: ['test/support/global-setup.ts'],
    hookTimeout: 300_000,
    reporters: ['default', 'json'],
    outputFile: { json: '.test-results/report.json' },
  },
});
