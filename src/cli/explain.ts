/**
 * How `txkit` tells what went wrong: the error, each of its causes on a line
 * of its own, and a hint for the failures that have a known fix (tables not
 * migrated, a driver not installed, a database or broker out of reach).
 */
import { TxkitError } from '../core/index.js';
import { databaseAddressOf } from './cli-config.js';

/** What a hint may name: the settings the command ran with. */
export interface HintContext {
  databaseUrl: string;
  tablePrefix: string;
  kafkaBrokers: readonly string[];
  /** Whether the relay speaks TLS or SASL to the brokers (a listener that closes plaintext connections hints at them). */
  kafkaTls?: unknown;
  kafkaSasl?: unknown;
}

/** Socket error codes that mean the other side could not be reached. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
/** kafkajs errors that mean no broker answered. */
const KAFKA_UNREACHABLE = new Set(['KafkaJSConnectionError', 'KafkaJSConnectionClosedError', 'KafkaJSRequestTimeoutError', 'KafkaJSBrokerNotFound']);

/** A message on one line: stack frames and Node's require stack left out, the rest joined. */
export function flatMessage(text: string): string {
  const lines: string[] = [];
  for (const line of text.split('\n')) {
    if (/^Require stack:/.test(line)) break;
    if (/^\s+at /.test(line) || line.trim() === '') continue;
    lines.push(line.trim());
  }
  return lines.join(' ');
}

function messageOf(err: unknown): string {
  if (!(err instanceof Error)) return flatMessage(String(err));
  const message = flatMessage(err.message);
  if (message !== '') return message;
  // An AggregateError of a connection tried on several addresses has no message of its own.
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? `${err.name} ${code}` : err.name;
}

/** The error and its causes, outermost first (the errors of an AggregateError count as its causes). */
export function errorChain(err: unknown): unknown[] {
  const chain: unknown[] = [];
  const seen = new Set<unknown>();
  const visit = (e: unknown): void => {
    if (e === undefined || e === null || seen.has(e) || chain.length >= 12) return;
    seen.add(e);
    chain.push(e);
    if (e instanceof AggregateError) for (const inner of e.errors) visit(inner);
    if (e instanceof Error) visit(e.cause);
  };
  visit(err);
  return chain;
}

/** The messages of the error's causes, outermost first, each once. */
export function causeMessages(err: unknown): string[] {
  const messages: string[] = [];
  for (const e of errorChain(err).slice(1)) {
    const message = messageOf(e);
    if (!messages.includes(message) && message !== messageOf(err)) messages.push(message);
  }
  return messages;
}

/** The error and its causes on one line: `message: cause: cause`. */
export function oneLine(err: unknown): string {
  return [messageOf(err), ...causeMessages(err)].join(': ');
}

const fieldOf = (e: unknown, name: string): unknown => (typeof e === 'object' && e !== null ? (e as Record<string, unknown>)[name] : undefined);

/** The npm package a "cannot find module" error names, when it is a package (not a file of one that is installed). */
function missingPackage(chain: readonly unknown[]): string | undefined {
  for (const e of chain) {
    const code = fieldOf(e, 'code');
    const message = e instanceof Error ? e.message : String(e);
    const named = /Cannot find (?:package|module) '([^']+)'/.exec(message);
    if (named === null || (code !== undefined && code !== 'MODULE_NOT_FOUND' && code !== 'ERR_MODULE_NOT_FOUND')) continue;
    const specifier = named[1] as string;
    if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:') || /^[A-Za-z]:\\/.test(specifier)) continue;
    const parts = specifier.split('/');
    return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string);
  }
  return undefined;
}

/** Whether the database says a table or collection of the outbox is not there. */
function missingTable(chain: readonly unknown[]): boolean {
  return chain.some((e) => {
    const code = fieldOf(e, 'code');
    const message = e instanceof Error ? e.message : '';
    return (
      code === '42P01' || // PostgreSQL undefined_table
      code === 'ER_NO_SUCH_TABLE' || // MySQL, MariaDB
      /\bno such table\b/i.test(message) || // SQLite
      /\brelation "[^"]+" does not exist\b/.test(message)
    );
  });
}

/** The broker address a kafkajs error names, else the configured brokers. */
function brokerOf(chain: readonly unknown[], context: HintContext): string {
  for (const e of chain) {
    const broker = fieldOf(e, 'broker');
    if (typeof broker === 'string' && broker !== '') return broker;
  }
  for (const e of chain) {
    const address = /\b(?:connect \w+|at) (\[[^\]]+\]:\d+|[\w.-]+:\d+)/.exec(e instanceof Error ? e.message : '');
    if (address !== null) return address[1] as string;
  }
  return context.kafkaBrokers.join(',') || 'the configured brokers';
}

function unreachable(e: unknown): boolean {
  const code = fieldOf(e, 'code');
  const name = e instanceof Error ? e.name : '';
  return (typeof code === 'string' && UNREACHABLE.has(code)) || name === 'KnexTimeoutError' || name === 'MongoServerSelectionError' || name === 'MongoNetworkError';
}

/**
 * What to do about a failure with a known fix, in the words of the command
 * line; undefined when there is nothing to add to the error itself.
 */
export function hintFor(err: unknown, context: HintContext): string | undefined {
  const chain = errorChain(err);
  const pkg = missingPackage(chain);
  if (pkg !== undefined) return `install ${pkg}: npm install ${pkg} (txkit loads it only for the commands that need it)`;
  if (missingTable(chain)) {
    return `the outbox tables with prefix '${context.tablePrefix}' are not there: run \`txkit migrate\` first (with the same --table-prefix ${context.tablePrefix} and database)`;
  }
  const names = chain.map((e) => (e instanceof Error ? e.name : ''));
  // kafkajs errors by name, @platformatic/kafka ones by their code.
  const kafka = names.some((n) => n.startsWith('KafkaJS')) || chain.some((e) => String(fieldOf(e, 'code')).startsWith('PLT_KFK_'));
  const messages = chain.map((e) => (e instanceof Error ? e.message : String(e))).join('\n');
  if (kafka && (names.includes('KafkaJSSASLAuthenticationError') || /SASL .*authentication failed|Unsupported SASL mechanism|IllegalSaslState/i.test(messages))) {
    return 'the broker refused the SASL login: check --kafka-sasl (the mechanism the listener takes), --kafka-username and the password (KAFKA_SASL_PASSWORD or --kafka-password-file)';
  }
  if (kafka && /certificate|self[- ]signed|altnames|unable to verify|unable to get (local )?issuer/i.test(messages)) {
    return "the broker's TLS certificate is not trusted: pass --kafka-ca with the CA that signed it, and check that the broker address in --kafka-brokers is a name or IP its certificate lists";
  }
  if (kafka && /wrong version number|EPROTO|packet length too long|ECONNRESET.*tls|before secure TLS connection/i.test(messages)) {
    return 'TLS and plaintext do not match: the listener at --kafka-brokers expects the other one (add or drop --kafka-tls / --kafka-ca, or use the listener of the other kind)';
  }
  if (kafka && (names.some((n) => KAFKA_UNREACHABLE.has(n)) || chain.some(unreachable))) {
    const closed = names.includes('KafkaJSConnectionClosedError') && context.kafkaTls === undefined && context.kafkaSasl === undefined;
    return (
      `cannot reach broker at ${brokerOf(chain, context)}: check --kafka-brokers (or KAFKA_BROKERS) and that the broker runs and listens there` +
      (closed ? '; a listener that closes plaintext connections takes TLS or SASL: pass --kafka-tls or --kafka-ca, or --kafka-sasl' : '')
    );
  }
  if (!kafka && chain.some(unreachable)) {
    const address = databaseAddressOf(context.databaseUrl);
    return `cannot reach the database${address === undefined ? '' : ` at ${address}`}: check --database-url (or DATABASE_URL) and that the database runs and accepts connections there`;
  }
  if (err instanceof TxkitError && err.code === 'RETRY_DEADLINE') {
    return 'the relay gave up on a broker transaction after --timeout-ms: fix what the causes name, or raise --timeout-ms';
  }
  return undefined;
}

/**
 * The report of a failed command: `txkit <command> failed [CODE]: message`,
 * each cause on a line of its own, and the hint when there is one.
 */
export function describeFailure(command: readonly string[], err: unknown, context: HintContext): string {
  const code = err instanceof TxkitError ? ` [${err.code}]` : '';
  const lines = [`txkit ${command.join(' ')} failed${code}: ${messageOf(err)}`, ...causeMessages(err).map((m) => `  caused by: ${m}`)];
  const hint = hintFor(err, context);
  if (hint !== undefined) lines.push(`hint: ${hint}`);
  return `${lines.join('\n')}\n`;
}
