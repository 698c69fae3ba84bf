import { ConfigError } from '../../core/index.js';
import type { Logger } from '../../core/index.js';

/**
 * Where the relay and the pipeline report errors they survive: the caller's
 * `onError`, else `logger.error` (pino's `(obj, msg)` signature), else a
 * process warning, so a surviving error is never silent.
 */
export function errorReporter(
  component: 'relay' | 'pipeline',
  onError: ((err: unknown) => void) | undefined,
  logger: Logger | undefined,
  fields: Record<string, unknown>,
): (err: unknown) => void {
  if (onError !== undefined) return onError;
  if (logger !== undefined && (typeof logger !== 'object' || logger === null || (logger.error !== undefined && typeof logger.error !== 'function'))) {
    throw new ConfigError(`${component} option 'logger' must be an object with an error(obj, msg) method like pino's, got ${typeof logger}`);
  }
  const log = logger?.error?.bind(logger);
  if (log !== undefined) return (err) => log({ err, ...fields }, `txkit ${component}: error survived, carrying on`);
  return (err) => process.emitWarning(`txkit ${component}: ${err instanceof Error ? err.message : String(err)}`, { code: `TXKIT_${component.toUpperCase()}` });
}
