/** What the CLI tests share: the txkit command run in-process against a temporary directory of SQLite files. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { main } from '../../src/cli/index.js';

/** A temporary directory for the test file's databases, removed after its tests. */
export function tempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `txkit-${label}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs `txkit <args>` in-process: its exit code, the lines on standard output and the text on standard error. */
export async function run(args: string[]): Promise<{ code: number; out: string[]; err: string }> {
  const out: string[] = [];
  let err = '';
  const code = await main(args, {}, { out: (l) => void out.push(l), err: (t) => void (err += t), isTTY: false });
  return { code, out, err };
}
