/**
 * The registries of error codes, and the "Error codes" table of
 * docs/errors-and-retries.md: every registered code is documented there, and
 * every code documented there is registered, so neither can drift.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'vitest';
import { ConfigError, ErrorCodes, TransactionStateError, TxkitError } from '../../src/index.js';
import type { ErrorCode } from '../../src/index.js';
import { PULSAR_SERVER_ERROR_NAMES, PulsarClientErrorCodes, PulsarServerError } from '../../src/pulsar-client/index.js';

const registered = new Set<string>(Object.values(ErrorCodes));
const clientCodes = new Set<string>(Object.values(PulsarClientErrorCodes));

/** The codes in the first column of the "Error codes" table, with the row each is on. */
function documentedCodes(): Map<string, number> {
  const page = readFileSync(new URL('../../docs/errors-and-retries.md', import.meta.url), 'utf8');
  const start = page.indexOf('\n### Error codes\n');
  assert.ok(start >= 0, 'docs/errors-and-retries.md has a section "Error codes"');
  const end = page.indexOf('\n#', start + 1);
  const rows = page
    .slice(start, end)
    .split('\n')
    .filter((l) => l.startsWith('| `'));
  const codes = new Map<string, number>();
  rows.forEach((row, i) => {
    const first = row.split(' | ')[0] ?? '';
    for (const m of first.matchAll(/`([A-Z][A-Z0-9_]*)`/g)) {
      const code = m[1] as string;
      assert.ok(!codes.has(code), `${code} is in the table once`);
      codes.set(code, i);
    }
  });
  return codes;
}

describe('error codes', () => {
  it('each registry maps every name to itself', () => {
    for (const [name, code] of [...Object.entries(ErrorCodes), ...Object.entries(PulsarClientErrorCodes)]) {
      assert.equal(code, name);
    }
  });

  it("txkit's registry lists every code of the Pulsar client (its errors are also instanceof TxkitError)", () => {
    for (const code of clientCodes) assert.ok(registered.has(code), `${code} is in ErrorCodes`);
  });

  it("every PulsarServerError carries a code of the client's registry", () => {
    assert.ok(PULSAR_SERVER_ERROR_NAMES.length > 20);
    const serverCodes = PULSAR_SERVER_ERROR_NAMES.map((_, i) => new PulsarServerError(i, '', 'SEND').code);
    for (const code of serverCodes) assert.ok(clientCodes.has(code), `${code} is in PulsarClientErrorCodes`);
    assert.equal(new Set(serverCodes).size, PULSAR_SERVER_ERROR_NAMES.length, 'one code per server error');
    assert.equal(new PulsarServerError(PULSAR_SERVER_ERROR_NAMES.length + 50, '', 'SEND').code, 'PULSAR_SERVER_ERROR');
  });

  it('docs/errors-and-retries.md documents every registered code, and only those', () => {
    const documented = documentedCodes();
    const missing = [...registered].filter((c) => !documented.has(c));
    const unknown = [...documented.keys()].filter((c) => !registered.has(c));
    assert.deepEqual(missing, [], 'registered codes missing from the "Error codes" table');
    assert.deepEqual(unknown, [], 'codes in the "Error codes" table that are not registered');
  });

  it('codes are checked by the compiler where errors are made and compared', () => {
    const err: TxkitError = new TransactionStateError('refused', { code: 'HANDLE_ENDED' });
    const code: ErrorCode = new ConfigError('bad').code;
    assert.equal(code, ErrorCodes.CONFIG);
    assert.equal(err.code, ErrorCodes.HANDLE_ENDED);
    // @ts-expect-error a misspelt code does not compile
    assert.ok(new TxkitError('HANDLE_ENDD', 'x') instanceof TxkitError);
    // @ts-expect-error nor does a misspelt code option
    assert.ok(new TransactionStateError('x', { code: 'PENDING_WROK' }) instanceof TxkitError);
    const state = new TransactionStateError('refused', { code: 'PENDING_WORK' });
    // @ts-expect-error nor comparing a typed code with a misspelt name
    assert.equal(state.code === 'PENDING_WROK', false);
  });
});
