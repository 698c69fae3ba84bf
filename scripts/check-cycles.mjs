#!/usr/bin/env node
// Fails when the relative imports between the files of src/ form a cycle, and
// names each cycle it finds. Type-only imports count too: a cycle of types is
// still two modules that cannot be understood one without the other.
//
//   node scripts/check-cycles.mjs [dir]   (default: src)
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(process.argv[2] ?? 'src');
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"](\.{1,2}\/[^'"]+)['"]/g;
const DYNAMIC = /import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function filesUnder(dir) {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return filesUnder(full);
    return /\.(ts|mts|cts)$/.test(name) && !name.endsWith('.d.ts') ? [full] : [];
  });
}

function resolve(from, spec) {
  const base = path.resolve(path.dirname(from), spec);
  const stem = base.replace(/\.(js|mjs|cjs)$/, '');
  for (const candidate of [`${stem}.ts`, `${stem}.mts`, `${stem}.cts`, path.join(base, 'index.ts')]) {
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not this one
    }
  }
  return undefined;
}

const graph = new Map();
for (const file of filesUnder(root)) {
  const text = readFileSync(file, 'utf8');
  const edges = new Set();
  for (const pattern of [IMPORT, DYNAMIC]) {
    for (const match of text.matchAll(pattern)) {
      const target = resolve(file, match[1]);
      if (target !== undefined) edges.add(target);
    }
  }
  graph.set(file, [...edges]);
}

// Tarjan's strongly connected components: every component of more than one
// file (or a file importing itself) is a cycle.
let index = 0;
const indexOf = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
const cycles = [];
function visit(node) {
  indexOf.set(node, index);
  low.set(node, index++);
  stack.push(node);
  onStack.add(node);
  for (const next of graph.get(node) ?? []) {
    if (!indexOf.has(next)) {
      visit(next);
      low.set(node, Math.min(low.get(node), low.get(next)));
    } else if (onStack.has(next)) {
      low.set(node, Math.min(low.get(node), indexOf.get(next)));
    }
  }
  if (low.get(node) === indexOf.get(node)) {
    const component = [];
    let member;
    do {
      member = stack.pop();
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || (graph.get(node) ?? []).includes(node)) cycles.push(component);
  }
}
for (const node of graph.keys()) if (!indexOf.has(node)) visit(node);

const rel = (file) => path.relative(process.cwd(), file);
if (cycles.length === 0) {
  console.log(`no import cycles among ${graph.size} files under ${rel(root) || '.'}`);
  process.exit(0);
}
for (const component of cycles) {
  console.error(`import cycle among ${component.length} files:\n  ${component.map(rel).sort().join('\n  ')}`);
}
console.error(`${cycles.length} import cycle(s): make the dependency go one way (move the shared piece into a module both import)`);
process.exit(1);
