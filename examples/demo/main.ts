// `npm run demo`: the consume-transform-produce job on the embedded defaults.
import { runDemo } from './run-demo.js';

const started = Date.now();
const report = await runDemo();
const rows: [string, number][] = [
  ['input orders', report.input],
  ['processed (distinct orders out)', report.processed],
  ['committed transactions', report.committedTransactions],
  ['retried (committed on attempt > 1)', report.retriedTransactions],
  ['faults injected', report.faultsInjected],
  ['duplicates', report.duplicates],
  ['lost', report.lost],
  ['customer totals wrong', report.stateMismatches],
];
console.log('txkit demo: orders -> per-customer totals -> order-totals (memory broker + memory state)\n');
for (const [label, value] of rows) console.log(`  ${label.padEnd(38)} ${value}`);
console.log(`\n  finished in ${Date.now() - started} ms`);
const ok = report.duplicates === 0 && report.lost === 0 && report.stateMismatches === 0 && report.processed === report.input;
console.log(ok ? '\nOK: every order processed exactly once.' : '\nFAILED: see the figures above.');
process.exitCode = ok ? 0 : 1;
