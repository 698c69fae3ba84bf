// `npm run demo`: the consume-transform-produce job on the embedded defaults
// (memory broker + SQLite), on your database with DATABASE_URL set, and on
// Kafka topics (read with kafkaSource, written by kafkaSink) with KAFKA_BROKERS set.
import { runDemo } from './run-demo.js';

const url = process.env.DATABASE_URL;
const database = url === undefined ? undefined : { client: url.startsWith('mysql') ? 'mysql2' : 'pg', connection: url };
const started = Date.now();
const kafkaBrokers = process.env.KAFKA_BROKERS;
const report = await runDemo({ ...(database === undefined ? {} : { database }), ...(kafkaBrokers === undefined || kafkaBrokers === '' ? {} : { kafkaBrokers }) });
const rows: [string, number | string][] = [
  ['database', report.database],
  ['broker', report.broker],
  ['input orders', report.input],
  ['processed (distinct orders out)', report.processed],
  ['malformed events in dead letters', report.deadLetters],
  ['retried (committed on attempt > 1)', report.retried],
  ['faults injected', report.faultsInjected],
  ['duplicates', report.duplicates],
  ['lost', report.lost],
  ['customer totals wrong', report.stateMismatches],
];
const broker = report.broker === 'kafka' ? 'Kafka' : 'memory broker';
console.log(`txkit demo: orders (${broker}) -> totals + outbox (SQL, one transaction per batch) -> relay -> order-totals (${broker})\n`);
for (const [label, value] of rows) console.log(`  ${label.padEnd(38)} ${value}`);
console.log(`\n  finished in ${Date.now() - started} ms`);
const ok = report.duplicates === 0 && report.lost === 0 && report.stateMismatches === 0 && report.processed === report.input;
console.log(ok ? '\nOK: every order processed exactly once; malformed events set aside with their errors.' : '\nFAILED: see the figures above.');
process.exitCode = ok ? 0 : 1;
