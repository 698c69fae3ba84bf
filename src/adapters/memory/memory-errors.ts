import { TransientTransactionError, classifyKnown } from '../../core/index.js';
import type { Classification } from '../../core/index.js';

/** Two transactions wrote the same key: a real conflict, so rerunning the unit is the fix. */
export class MemoryWriteConflictError extends TransientTransactionError {
  readonly key: string;
  constructor(key: string, why: string) {
    super(`memory write conflict on key '${printable(key)}': ${why}; the unit can run again`, {
      backend: 'memory',
      code: 'WRITE_CONFLICT',
    });
    this.key = key;
  }
}

/** The memory store only raises txkit errors; anything else came from user code and is fatal. */
export function classifyMemoryError(err: unknown): Classification {
  return classifyKnown(err) ?? 'fatal';
}

function printable(key: string): string {
  return key.split('\u0000').join('/');
}
