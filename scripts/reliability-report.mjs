#!/usr/bin/env node
// Rewrites the "last run" table of docs/reliability.md from .test-results/faults.jsonl,
// where every fault scenario appends one JSON line with its figures. The newest line
// of each scenario wins. Run it after `npm run test:faults`.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const source = `${root}.test-results/faults.jsonl`;
const doc = `${root}docs/reliability.md`;
const BEGIN = '<!-- fault-figures:begin -->';
const END = '<!-- fault-figures:end -->';

if (!existsSync(source)) {
  console.error(`no ${source}: run npm run test:faults first`);
  process.exit(1);
}
const latest = new Map();
for (const line of readFileSync(source, 'utf8').split('\n')) {
  if (line.trim() === '') continue;
  const row = JSON.parse(line);
  latest.set(row.scenario, row);
}
const COMMON = new Set(['scenario', 'messages', 'faults', 'duplicates', 'lost', 'at']);
const detail = (row) =>
  Object.entries(row)
    .filter(([k]) => !COMMON.has(k))
    .map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(', ') : v}`)
    .join('; ');
const table = [
  '| scenario | messages | faults injected | duplicates | lost | other figures | run at |',
  '| --- | ---: | ---: | ---: | ---: | --- | --- |',
  ...[...latest.values()]
    .sort((a, b) => a.scenario.localeCompare(b.scenario))
    .map((r) => `| ${r.scenario} | ${r.messages} | ${r.faults} | ${r.duplicates} | ${r.lost} | ${detail(r)} | ${r.at} |`),
].join('\n');
const text = readFileSync(doc, 'utf8');
const from = text.indexOf(BEGIN);
const to = text.indexOf(END);
if (from < 0 || to < from) {
  console.error(`docs/reliability.md has no ${BEGIN} ... ${END} block`);
  process.exit(1);
}
writeFileSync(doc, `${text.slice(0, from + BEGIN.length)}\n${table}\n${text.slice(to)}`);
console.log(`docs/reliability.md: ${latest.size} fault scenario(s) from ${source}`);
