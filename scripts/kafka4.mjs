#!/usr/bin/env node
// `npm run test:kafka4`: the Kafka suites again, on the newest Kafka 4.x the
// service scripts run (a broker of its own, in a state directory of its own, so
// the 3.9 broker of `npm test` is not touched). Ends with the summary line of
// scripts/test.mjs. TXKIT_KAFKA4_VERSION picks another 4.x.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const KAFKA4_VERSION = process.env.TXKIT_KAFKA4_VERSION || '4.4.0';

/** The suites that run on Kafka: the adapter, the outbox and pipeline on Kafka, the Kafka faults (the 3-node cluster runs on one version only). */
export const KAFKA_SUITES = [
  'test/kafka',
  'test/outbox/outbox-kafka.test.ts',
  'test/outbox/pipeline-kafka.test.ts',
  'test/outbox/kafka-source-aborted-tail.test.ts',
  'test/outbox/relay-scale-kafka.test.ts',
  'test/faults/kafka-faults.test.ts',
];

const root = fileURLToPath(new URL('..', import.meta.url));
const stateDir = mkdtempSync(path.join(tmpdir(), 'txkit-kafka4-state-'));
const required = (process.env.TXKIT_REQUIRE ?? '').split(',').filter((s) => s === 'postgres' || s === 'mysql' || s === 'kafka' || s === 'confluent-kafka');
const run = spawnSync(process.execPath, [path.join(root, 'scripts/test.mjs'), ...KAFKA_SUITES, ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: {
    ...process.env,
    TXKIT_KAFKA_VERSION: KAFKA4_VERSION,
    TXKIT_STATE_DIR: stateDir,
    // Pulsar is not needed here; a required Kafka must start.
    TXKIT_SKIP_SERVICES: 'pulsar',
    TXKIT_REQUIRE: required.join(','),
  },
});
rmSync(stateDir, { recursive: true, force: true });
process.exit(run.status ?? 1);
