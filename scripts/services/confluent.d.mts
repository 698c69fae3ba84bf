// Types for scripts/services/confluent.mjs.
/** Where the install for the current lockfile lives (it may not exist yet). */
export function confluentInstallDir(): string;
/** Installs the pinned @confluentinc/kafka-javascript once into the txkit cache; resolves to its entry module's path. */
export function ensureConfluentClient(options?: { log?: ((line: string) => void) | false; timeoutMs?: number }): Promise<string>;
