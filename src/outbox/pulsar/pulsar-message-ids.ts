import { ErrorCodes, TxkitError } from '../../core/index.js';

/** Order of the entries (ledger, entry) two ids of one topic are in, ignoring the index in a batch. */
export function compareEntries(a: { ledgerId: bigint; entryId: bigint }, b: { ledgerId: bigint; entryId: bigint }): number {
  if (a.ledgerId !== b.ledgerId) return a.ledgerId < b.ledgerId ? -1 : 1;
  return a.entryId === b.entryId ? 0 : a.entryId < b.entryId ? -1 : 1;
}

/** A receive that timed out (the client's PULSAR_TIMEOUT). */
export function isTimeout(err: unknown): boolean {
  return err instanceof TxkitError && err.code === ErrorCodes.PULSAR_TIMEOUT;
}
