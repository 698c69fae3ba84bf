import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError } from '../core/index.js';

/** The exit codes of `txkit`, the one place they are defined. */
export const ExitCode = {
  /** The command did what it was asked. */
  OK: 0,
  /** The command ran and failed: a database or broker error, an unknown relay id, a relay that gave up. */
  FAILURE: 1,
  /** The command line or the configuration is wrong: unknown command or option, extra argument, bad value, missing database or broker. */
  USAGE: 2,
} as const;

/** Where the command writes: `out` gets its output (one line per call), `err` everything else. */
export interface CliIo {
  out: (line: string) => void;
  err: (text: string) => void;
  /** Whether standard error is a terminal: then progress is a bar redrawn in place, else plain lines. */
  isTTY: boolean;
}

export interface CliConfig {
  /** The command as typed, e.g. `['outbox', 'status']`. */
  command: string[];
  databaseUrl: string;
  tablePrefix: string;
  partitions: number;
  kafkaBrokers: string[];
  relayId: string;
  /** Whether --relay-id or TXKIT_RELAY_ID named it (outbox add-relay / remove-relay need that). */
  relayIdGiven: boolean;
  batchSize: number;
  /** Prefix of the relay's per-partition transactional ids: `<prefix>-<relayId>-<partition>`. */
  transactionalIdPrefix: string;
  /** Time to live of the relay's partition leases. */
  leaseTtlMs: number;
  pollIntervalMs: number;
  retentionMs: number;
  /** How long the relay retries one broker transaction, reaching the broker included, before it gives up. */
  timeoutMs: number;
  /** TLS to the Kafka brokers: PEM file paths, read when the relay starts; undefined for plaintext. */
  kafkaTls: KafkaTlsFiles | undefined;
  /** SASL authentication to the Kafka brokers; undefined for none. */
  kafkaSasl: KafkaSaslConfig | undefined;
  /** The client the relay runs on: kafkajs, or @platformatic/kafka (its producers and its read of the stored positions). */
  kafkaClient: KafkaCliClient;
  drain: boolean;
  json: boolean;
  help: boolean;
  version: boolean;
}

/** The PEM files of `--kafka-ca`, `--kafka-cert` and `--kafka-key`; none given with `--kafka-tls` means the system's CAs. */
export interface KafkaTlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

/** The clients `--kafka-client` takes. */
export const KAFKA_CLI_CLIENTS = ['kafkajs', 'platformatic'] as const;
export type KafkaCliClient = (typeof KAFKA_CLI_CLIENTS)[number];

/** The SASL mechanisms `--kafka-sasl` takes, as kafkajs names them. */
export const KAFKA_SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;

/** `--kafka-sasl`, `--kafka-username` and the password (KAFKA_SASL_PASSWORD, or the file of --kafka-password-file). */
export interface KafkaSaslConfig {
  mechanism: (typeof KAFKA_SASL_MECHANISMS)[number];
  username: string;
  /** From KAFKA_SASL_PASSWORD; never from the command line, where other users could read it. */
  password?: string;
  /** --kafka-password-file: read when the relay starts, a trailing newline dropped. */
  passwordFile?: string;
}

interface OptionSpec {
  /** What the value looks like in the usage text; none for a flag. */
  arg?: string;
  short?: string;
  env?: string;
  default?: string;
  help: string;
}

/** Every option `txkit` parses. Each command takes the ones its entry in {@link COMMANDS} lists. */
export const OPTIONS = {
  'database-url': {
    arg: 'URL',
    env: 'DATABASE_URL',
    help: 'the outbox database: postgres://..., mysql://..., sqlite:///path/to/file.db or mongodb://host:27017/dbname?replicaSet=rs0',
  },
  'table-prefix': { arg: 'P', env: 'TXKIT_TABLE_PREFIX', default: 'txkit_', help: 'prefix of the outbox tables (MongoDB: of the collections)' },
  partitions: { arg: 'N', env: 'TXKIT_PARTITIONS', default: '1', help: 'outbox partitions, the same number the application publishes with' },
  'kafka-brokers': { arg: 'H:P,...', env: 'KAFKA_BROKERS', help: 'the Kafka brokers to relay to; required' },
  'relay-id': { arg: 'ID', env: 'TXKIT_RELAY_ID', default: 'default', help: "names the relay's positions; relays of one id split the partitions" },
  'batch-size': { arg: 'N', default: '500', help: 'records per broker transaction' },
  'poll-interval-ms': { arg: 'N', default: '1000', help: 'longest wait before looking for new records when no commit notification arrives' },
  'retention-ms': { arg: 'N', default: '604800000', help: 'records older than this that every known relay id has sent are deleted' },
  'transactional-id-prefix': {
    arg: 'P',
    env: 'TXKIT_TRANSACTIONAL_ID_PREFIX',
    default: 'txkit-relay',
    help: 'Kafka transactional ids are <prefix>-<relay id>-<partition>; the same in every relay process',
  },
  'lease-ttl-ms': { arg: 'N', default: '15000', help: "how long a partition stays with a relay that stopped renewing its lease" },
  'timeout-ms': {
    arg: 'N',
    default: '120000',
    help: 'how long one broker transaction is retried, reaching the broker included, before the relay gives up on it (--drain then exits with 1)',
  },
  'kafka-client': {
    arg: 'CLIENT',
    env: 'KAFKA_CLIENT',
    default: 'kafkajs',
    help: `the client the relay's producers run on: ${KAFKA_CLI_CLIENTS.join(', ')} (@platformatic/kafka, installed beside txkit)`,
  },
  'kafka-tls': { help: "connect to the Kafka brokers over TLS, trusting the system's CAs (implied by --kafka-ca and --kafka-cert)" },
  'kafka-ca': {
    arg: 'FILE',
    env: 'KAFKA_CA_FILE',
    help: "PEM file of the CAs that sign the brokers' certificates (TLS; each broker's host name or IP must match its certificate)",
  },
  'kafka-cert': { arg: 'FILE', env: 'KAFKA_CERT_FILE', help: 'PEM client certificate, for brokers that require TLS client authentication (with --kafka-key)' },
  'kafka-key': { arg: 'FILE', env: 'KAFKA_KEY_FILE', help: "PEM private key of --kafka-cert (unencrypted)" },
  'kafka-sasl': { arg: 'MECHANISM', env: 'KAFKA_SASL_MECHANISM', help: `SASL authentication to the brokers: ${KAFKA_SASL_MECHANISMS.join(', ')} (with --kafka-username and a password)` },
  'kafka-username': { arg: 'USER', env: 'KAFKA_SASL_USERNAME', help: 'SASL user name' },
  'kafka-password-file': {
    arg: 'FILE',
    env: 'KAFKA_SASL_PASSWORD_FILE',
    help: 'file holding the SASL password; or set KAFKA_SASL_PASSWORD (a password is never taken from the command line)',
  },
  drain: { help: 'send what is pending, then exit' },
  json: { help: 'print the status as one JSON object' },
  help: { short: 'h', help: 'print this help' },
  version: { help: "print txkit's version" },
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;

interface CommandSpec {
  /** The words that name it, e.g. `outbox status`. */
  name: string;
  summary: string;
  /** The options it takes besides --help and --version, in the order the help lists them. */
  options: readonly OptionName[];
  /** Options it cannot run without (shown without brackets). */
  required?: readonly OptionName[];
}

const STORE_OPTIONS = ['database-url', 'table-prefix', 'partitions'] as const satisfies readonly OptionName[];

/** Every command, with the options it takes. */
export const COMMANDS: readonly CommandSpec[] = [
  { name: 'migrate', summary: 'create or upgrade the outbox schema (safe to run twice)', options: STORE_OPTIONS },
  { name: 'outbox status', summary: 'the backlog per partition, relay id and topic, and the partition leases', options: [...STORE_OPTIONS, 'json'] },
  {
    name: 'outbox add-relay',
    summary: 'make a relay id known before its first run: cleanup keeps every record it has not sent',
    options: ['relay-id', ...STORE_OPTIONS],
    required: ['relay-id'],
  },
  {
    name: 'outbox remove-relay',
    summary: 'retire a relay id that is gone for good: cleanup stops waiting for it',
    options: ['relay-id', ...STORE_OPTIONS],
    required: ['relay-id'],
  },
  {
    name: 'relay',
    summary: 'move committed outbox records to Kafka, until SIGTERM/SIGINT (or with --drain until nothing is pending)',
    options: [
      ...STORE_OPTIONS,
      'kafka-brokers',
      'relay-id',
      'batch-size',
      'poll-interval-ms',
      'retention-ms',
      'transactional-id-prefix',
      'lease-ttl-ms',
      'timeout-ms',
      'kafka-client',
      'kafka-tls',
      'kafka-ca',
      'kafka-cert',
      'kafka-key',
      'kafka-sasl',
      'kafka-username',
      'kafka-password-file',
      'drain',
    ],
    required: ['kafka-brokers'],
  },
];

const GLOBAL_OPTIONS: readonly OptionName[] = ['help', 'version'];

function optionUsage(name: OptionName, required: boolean): string {
  const spec: OptionSpec = OPTIONS[name];
  const text = spec.arg === undefined ? `--${name}` : `--${name} ${spec.arg}`;
  return required ? text : `[${text}]`;
}

/** `txkit relay [--database-url URL] ...`, wrapped under the command's name. */
export function synopsisOf(command: CommandSpec): string {
  const head = `txkit ${command.name}`;
  const lines: string[] = [];
  let line = head;
  for (const name of command.options) {
    const part = optionUsage(name, command.required?.includes(name) ?? false);
    if (line.length + 1 + part.length > 92 && line !== head) {
      lines.push(line);
      line = ' '.repeat(head.length);
    }
    line += ` ${part}`;
  }
  lines.push(line);
  return lines.join('\n');
}

const SYNOPSES = `Usage:
${COMMANDS.map((c) => synopsisOf(c).replace(/^/gm, '  ')).join('\n')}
  txkit <command> --help    the command's options
  txkit --version`;

/** What a usage error prints below its message: the command's synopsis, or every command's. */
export function usageOf(command: CommandSpec | undefined): string {
  if (command === undefined) return `${SYNOPSES}\n\nRun 'txkit --help' for more.`;
  return `Usage:\n${synopsisOf(command).replace(/^/gm, '  ')}\n\nRun 'txkit ${command.name} --help' for what each option does.`;
}

export const USAGE = `txkit: operate the txkit outbox

${SYNOPSES}

Options fall back to the environment: DATABASE_URL, KAFKA_BROKERS, TXKIT_TABLE_PREFIX,
TXKIT_PARTITIONS, TXKIT_RELAY_ID, TXKIT_TRANSACTIONAL_ID_PREFIX, and for TLS and SASL KAFKA_CA_FILE,
KAFKA_CERT_FILE, KAFKA_KEY_FILE, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD,
KAFKA_SASL_PASSWORD_FILE. DATABASE_URL is postgres://..., mysql://...,
sqlite:///path/to/file.db or mongodb://host/dbname?replicaSet=rs0 (the database is the
URL's path; --table-prefix is then the collections' prefix). 'relay' runs until SIGTERM/SIGINT (graceful: the broker
transaction in flight ends first); with --drain it sends what is pending and exits.
Run as many 'relay' processes of one relay id as you like: they split the outbox partitions
through leases in the database (a lease lapses --lease-ttl-ms after its holder stops renewing
it, default 15000), and each partition's broker transactions use the transactional id
<prefix>-<relay id>-<partition> (--transactional-id-prefix, default txkit-relay; the same in
every process), so a partition's new owner fences its former one at the broker.
Cleanup deletes a record only once every relay id known to the store has sent it: a relay id
becomes known when its relay first runs (or with 'outbox add-relay'), and stays known until
'outbox remove-relay'.

Exit codes: ${ExitCode.OK} done, ${ExitCode.FAILURE} the command failed, ${ExitCode.USAGE} wrong command line or configuration.`;

/** `text` in lines of at most `width` characters, broken at spaces. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines;
}

/** `txkit <command> --help`: what it does, its synopsis, and each option with its environment variable and default. */
export function helpOf(command: CommandSpec): string {
  const names = [...command.options, ...GLOBAL_OPTIONS];
  const labels = names.map((name) => {
    const spec: OptionSpec = OPTIONS[name];
    return `${spec.short === undefined ? '    ' : `-${spec.short}, `}--${name}${spec.arg === undefined ? '' : ` ${spec.arg}`}`;
  });
  const width = Math.max(...labels.map((l) => l.length));
  const rows = names.map((name, i) => {
    const spec: OptionSpec = OPTIONS[name];
    const extra = [spec.env === undefined ? '' : `env ${spec.env}`, spec.default === undefined ? '' : `default ${spec.default}`].filter(Boolean).join(', ');
    return `  ${(labels[i] as string).padEnd(width)}  ${wrap(`${spec.help}${extra === '' ? '' : ` (${extra})`}`, 100 - width - 4).join(`\n${' '.repeat(width + 4)}`)}`;
  });
  return `txkit ${command.name}: ${command.summary}\n\nUsage:\n${synopsisOf(command).replace(/^/gm, '  ')}\n\nOptions:\n${rows.join('\n')}`;
}

/** The command `words` name (`['outbox', 'status', ...]`), with how many of the words its name takes. */
function findCommand(words: readonly string[]): { spec: CommandSpec; length: number } | undefined {
  for (const spec of COMMANDS) {
    const parts = spec.name.split(' ');
    if (parts.every((part, i) => words[i] === part)) return { spec, length: parts.length };
  }
  return undefined;
}

/** The command of a command line as far as it can be told (for the usage text of an error): undefined when it names none. */
export function commandOf(argv: readonly string[]): CommandSpec | undefined {
  try {
    const { positionals } = parseArgs({ args: [...argv], allowPositionals: true, strict: false, options: parseOptions() });
    return findCommand(positionals[0] === 'help' ? positionals.slice(1) : positionals)?.spec;
  } catch {
    return undefined;
  }
}

function parseOptions(): Record<string, { type: 'string' | 'boolean'; short?: string }> {
  return Object.fromEntries(
    Object.entries(OPTIONS).map(([name, spec]: [string, OptionSpec]) => [
      name,
      { type: spec.arg === undefined ? 'boolean' : 'string', ...(spec.short === undefined ? {} : { short: spec.short }) },
    ]),
  );
}

function parseStrict(argv: readonly string[]) {
  try {
    return parseArgs({ args: [...argv], allowPositionals: true, strict: true, tokens: true, options: parseOptions() });
  } catch (err) {
    throw parseError(err);
  }
}

/** node:util parseArgs' own errors, in the words of this command. */
function parseError(err: unknown): ConfigError {
  const message = err instanceof Error ? err.message : String(err);
  const unknown = /^Unknown option '([^']+)'/.exec(message);
  if (unknown !== null) return new ConfigError(`unknown option '${unknown[1]}'`, { cause: err });
  const missing = /^Option '(-\w, )?(--[\w-]+) <value>' argument missing/.exec(message);
  if (missing !== null) return new ConfigError(`option '${missing[2]}' needs a value`, { cause: err });
  const flag = /^Option '(-\w, )?(--[\w-]+)' does not take an argument/.exec(message);
  if (flag !== null) return new ConfigError(`option '${flag[2]}' is a flag and takes no value`, { cause: err });
  return new ConfigError(message.split('\n')[0] as string, { cause: err });
}

/**
 * Parses argv and the environment; bad input gets ConfigError naming the
 * option or argument. `help` and `version` skip the checks of the values, so
 * `txkit relay --help` works whatever else the line holds.
 */
export function parseCli(argv: readonly string[], env: NodeJS.ProcessEnv): CliConfig {
  const parsed = parseStrict(argv);
  const values = parsed.values as Partial<Record<OptionName, string | boolean>>;
  const str = (name: OptionName): string | undefined => values[name] as string | undefined;
  const flag = (name: OptionName): boolean => values[name] === true;
  let words = parsed.positionals;
  const helpWord = words[0] === 'help';
  if (helpWord) words = words.slice(1);
  const found = findCommand(words);
  const help = flag('help') || helpWord;
  const version = flag('version');
  if (found === undefined && words.length > 0 && !version) {
    const known = COMMANDS.map((c) => c.name).join(', ');
    if (words[0] === 'outbox') {
      const subs = COMMANDS.filter((c) => c.name.startsWith('outbox ')).map((c) => c.name.slice('outbox '.length));
      throw new ConfigError(words.length === 1 ? `'outbox' needs a subcommand: ${subs.join(', ')}` : `unknown command 'outbox ${words[1]}': outbox has ${subs.join(', ')}`);
    }
    throw new ConfigError(`unknown command '${words[0]}': the commands are ${known}`);
  }
  const command = found === undefined ? [] : words.slice(0, found.length);
  if (found !== undefined && !help && !version) {
    const extra = words.slice(found.length);
    if (extra.length > 0) {
      throw new ConfigError(`unexpected argument${extra.length > 1 ? 's' : ''} ${extra.map((w) => `'${w}'`).join(' ')}: txkit ${found.spec.name} takes options only`);
    }
    for (const token of parsed.tokens) {
      if (token.kind !== 'option') continue;
      const name = token.name as OptionName;
      if (!found.spec.options.includes(name) && !GLOBAL_OPTIONS.includes(name)) {
        throw new ConfigError(`txkit ${found.spec.name} does not take --${name}: see txkit ${found.spec.name} --help`);
      }
    }
  }
  const checked = !help && !version;
  const int = (name: OptionName, raw: string | undefined, fallback: number): number => {
    if (raw === undefined || !checked) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new ConfigError(`--${name} must be a positive integer, got '${raw}'`);
    return n;
  };
  const nonEmpty = (name: OptionName, raw: string | undefined, fallback: string): string => {
    if (raw === undefined) return fallback;
    if (raw.trim() === '' && checked) throw new ConfigError(`--${name} must not be empty`);
    return raw;
  };
  return {
    command,
    databaseUrl: str('database-url') ?? env.DATABASE_URL ?? '',
    tablePrefix: str('table-prefix') ?? env.TXKIT_TABLE_PREFIX ?? 'txkit_',
    partitions: int('partitions', str('partitions') ?? env.TXKIT_PARTITIONS, 1),
    kafkaBrokers: (str('kafka-brokers') ?? env.KAFKA_BROKERS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    relayId: str('relay-id') ?? env.TXKIT_RELAY_ID ?? 'default',
    relayIdGiven: (str('relay-id') ?? env.TXKIT_RELAY_ID) !== undefined,
    batchSize: int('batch-size', str('batch-size'), 500),
    transactionalIdPrefix: nonEmpty('transactional-id-prefix', str('transactional-id-prefix') ?? env.TXKIT_TRANSACTIONAL_ID_PREFIX, 'txkit-relay'),
    leaseTtlMs: int('lease-ttl-ms', str('lease-ttl-ms'), 15_000),
    pollIntervalMs: int('poll-interval-ms', str('poll-interval-ms'), 1000),
    retentionMs: int('retention-ms', str('retention-ms'), 604_800_000),
    timeoutMs: int('timeout-ms', str('timeout-ms'), 120_000),
    kafkaTls: checked ? kafkaTlsOf(str, flag, env) : undefined,
    kafkaSasl: checked ? kafkaSaslOf(str, env) : undefined,
    kafkaClient: checked ? kafkaClientOf(str('kafka-client') ?? env.KAFKA_CLIENT) : 'kafkajs',
    drain: flag('drain'),
    json: flag('json'),
    help,
    version,
  };
}

type StringOption = (name: OptionName) => string | undefined;

function kafkaTlsOf(str: StringOption, flag: (name: OptionName) => boolean, env: NodeJS.ProcessEnv): KafkaTlsFiles | undefined {
  const ca = str('kafka-ca') ?? env.KAFKA_CA_FILE;
  const cert = str('kafka-cert') ?? env.KAFKA_CERT_FILE;
  const key = str('kafka-key') ?? env.KAFKA_KEY_FILE;
  if ((cert === undefined) !== (key === undefined)) {
    throw new ConfigError(`TLS client authentication needs both --kafka-cert and --kafka-key; got only --kafka-${cert === undefined ? 'key' : 'cert'}`);
  }
  if (!flag('kafka-tls') && ca === undefined && cert === undefined) return undefined;
  return { ...(ca === undefined ? {} : { ca }), ...(cert === undefined ? {} : { cert }), ...(key === undefined ? {} : { key }) };
}

function kafkaClientOf(raw: string | undefined): KafkaCliClient {
  if (raw === undefined) return 'kafkajs';
  if (!(KAFKA_CLI_CLIENTS as readonly string[]).includes(raw)) {
    throw new ConfigError(`--kafka-client must be one of ${KAFKA_CLI_CLIENTS.join(', ')}, got '${raw}'`);
  }
  return raw as KafkaCliClient;
}

function kafkaSaslOf(str: StringOption, env: NodeJS.ProcessEnv): KafkaSaslConfig | undefined {
  const mechanism = (str('kafka-sasl') ?? env.KAFKA_SASL_MECHANISM)?.toLowerCase();
  const username = str('kafka-username') ?? env.KAFKA_SASL_USERNAME;
  const passwordFile = str('kafka-password-file') ?? env.KAFKA_SASL_PASSWORD_FILE;
  const password = env.KAFKA_SASL_PASSWORD;
  if (mechanism === undefined) {
    if (username !== undefined || passwordFile !== undefined) {
      throw new ConfigError(`--kafka-username and --kafka-password-file need --kafka-sasl MECHANISM (${KAFKA_SASL_MECHANISMS.join(', ')})`);
    }
    return undefined;
  }
  if (!(KAFKA_SASL_MECHANISMS as readonly string[]).includes(mechanism)) {
    throw new ConfigError(`--kafka-sasl must be one of ${KAFKA_SASL_MECHANISMS.join(', ')}, got '${mechanism}'`);
  }
  if (username === undefined || username === '') throw new ConfigError(`--kafka-sasl ${mechanism} needs --kafka-username (or KAFKA_SASL_USERNAME)`);
  if (password === undefined && passwordFile === undefined) {
    throw new ConfigError(`--kafka-sasl ${mechanism} needs a password: set KAFKA_SASL_PASSWORD, or pass --kafka-password-file FILE`);
  }
  return {
    mechanism: mechanism as KafkaSaslConfig['mechanism'],
    username,
    ...(passwordFile === undefined ? { password: password as string } : { passwordFile }),
  };
}

/** The spec of a parsed command (`config.command`). */
export function specOf(command: readonly string[]): CommandSpec | undefined {
  return findCommand(command)?.spec;
}

/** The version in txkit's package.json, found upwards of this module (src/cli in the sources, dist in the package). */
export function packageVersion(): string {
  try {
    let dir = dirname(fileURLToPath(import.meta.url));
    for (;;) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
        if (pkg.name === 'txkit' && typeof pkg.version === 'string') return pkg.version;
      } catch {
        // No package.json here: look further up.
      }
      const up = dirname(dir);
      if (up === dir) return 'unknown';
      dir = up;
    }
  } catch {
    return 'unknown';
  }
}

/** The MongoDB URL and database a DATABASE_URL names, or undefined for a SQL URL. */
export function mongoUrlOf(url: string): { url: string; database: string } | undefined {
  if (!url.startsWith('mongodb://') && !url.startsWith('mongodb+srv://')) return undefined;
  let database: string;
  try {
    database = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  } catch {
    throw new ConfigError(`invalid MongoDB URL '${url.replace(/\/\/[^@]*@/, '//***@')}': use mongodb://host:27017/dbname?replicaSet=rs0`);
  }
  if (database === '') {
    throw new ConfigError('the MongoDB URL names no database: add it as the path, e.g. mongodb://host:27017/app?replicaSet=rs0');
  }
  return { url, database };
}

/** A knex config from a database URL. */
export function knexConfigOf(url: string): { client: string; connection: unknown; useNullAsDefault?: boolean; pool?: { min: number; max: number } } {
  if (url === '') throw new ConfigError('no database: pass --database-url or set DATABASE_URL (postgres://, mysql://, sqlite:///file.db, mongodb://host/db)');
  const masked = url.replace(/\/\/[^@/]*@/, '//***@');
  const parses = (example: string): void => {
    try {
      new URL(url);
    } catch (err) {
      throw new ConfigError(`invalid database URL '${masked}': use ${example} (with special characters of the password percent-encoded)`, { cause: err });
    }
  };
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    parses('postgres://user:password@host:5432/database');
    return { client: 'pg', connection: url, pool: { min: 0, max: 4 } };
  }
  if (url.startsWith('mysql://') || url.startsWith('mariadb://')) {
    parses('mysql://user:password@host:3306/database');
    return { client: 'mysql2', connection: url.replace(/^mariadb:/, 'mysql:'), pool: { min: 0, max: 4 } };
  }
  if (url.startsWith('sqlite://')) return { client: 'better-sqlite3', connection: { filename: url.slice('sqlite://'.length) }, useNullAsDefault: true };
  throw new ConfigError(`unsupported database URL '${masked}': use postgres://, mysql://, sqlite:///path or mongodb://host/db`);
}

/** `host:port` of a database URL (the scheme's default port when it names none), or the hosts of a MongoDB seed list; undefined for SQLite. */
export function databaseAddressOf(url: string): string | undefined {
  const ports: Record<string, string> = { postgres: '5432', postgresql: '5432', mysql: '3306', mariadb: '3306', mongodb: '27017' };
  const match = /^([a-z+]+):\/\/(?:[^@/]*@)?([^/?#]+)/i.exec(url);
  if (match === null) return undefined;
  const [, scheme, hosts] = match as unknown as [string, string, string];
  if (scheme === 'mongodb+srv') return hosts;
  const port = ports[scheme.toLowerCase()];
  if (port === undefined) return undefined;
  return hosts
    .split(',')
    .map((host) => (/:\d+$/.test(host) ? host : `${host}:${port}`))
    .join(',');
}
