import { ConfigError } from './errors.js';
import type { BackendName } from './types.js';

/**
 * Refuses keys an options object does not know: a misspelt option is a
 * mistake, never a silent no-op. `what` names the object in the message
 * (e.g. `the options of pgTransactions`); `hints` maps a known mistake to advice.
 * @throws ConfigError naming each unknown key and the accepted ones.
 */
export function checkKnownOptions(
  options: object,
  known: ReadonlySet<string> | readonly string[],
  what: string,
  backend: BackendName | undefined,
  hints: Readonly<Record<string, string>> = {},
): void {
  const accepted = known instanceof Set ? known : new Set(known);
  let unknown: string[] | undefined;
  for (const key in options) {
    if (!accepted.has(key) && (options as Record<string, unknown>)[key] !== undefined) (unknown ??= []).push(key);
  }
  if (unknown === undefined) return;
  const advice = unknown.map((k) => hints[k]).filter((h): h is string => h !== undefined);
  throw new ConfigError(
    `unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')} in ${what} (check the spelling); ` +
      `the accepted options are ${[...accepted].join(', ')}${advice.length > 0 ? `. ${advice.join(' ')}` : ''}`,
    { backend },
  );
}

/** Describes a value's type for error messages: `null`, `an array`, or its `typeof`. */
export function describeType(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}
