import { ConfigError } from './errors.js';
import type { TransactionDriver } from './driver.js';
import type { BackendName, BeginOptions } from './types.js';

/** The core's own begin options, which every transaction takes. */
export const BEGIN_OPTION_KEYS: ReadonlySet<string> = new Set<keyof BeginOptions>(['timeoutMs', 'signal']);

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

/**
 * Describes a value's type for error messages: `null`, `an array`, or its
 * `typeof`. With `strings`, a string is shown itself instead of `string`:
 * `'json'` as JSON (`"abc"`), `'quoted'` in single quotes (`'abc'`).
 */
export function describeType(v: unknown, strings?: 'json' | 'quoted'): string {
  if (typeof v === 'string' && strings !== undefined) return strings === 'json' ? JSON.stringify(v) : `'${v}'`;
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

/** Describes an error for a message: `<name>: <message>` for an Error, else the value as a string. */
export function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Whether an option asked for is the one a running transaction has (objects compared by their JSON). */
export function sameOption(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** An option's value as a message shows it. */
export function showOption(v: unknown): string {
  return v === undefined ? 'the default' : typeof v === 'string' ? `'${v}'` : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
}

/** For keys a context does not know but each transaction would (e.g. `timeoutMs`), the advice to move them into `defaults`. */
export function beginOptionHints(driver: TransactionDriver<unknown, object>, options: object): Record<string, string> {
  const hints: Record<string, string> = {};
  for (const key of Object.keys(options)) {
    if (BEGIN_OPTION_KEYS.has(key) || driver.optionKeys?.includes(key) === true) {
      hints[key] = `'${key}' is an option of each transaction: give it as { defaults: { ${key} } } to apply it to every transaction of this context.`;
    }
  }
  return hints;
}
