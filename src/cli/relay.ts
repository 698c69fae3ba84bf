import { readFileSync } from 'node:fs';
import { ConfigError } from '../core/index.js';
import { OutboxRelay, kafkaSink } from '../outbox/index.js';
import type { KafkaSinkClientLike, RelayPartition, RelaySink } from '../outbox/index.js';
import type { MessageHandle } from '../core/index.js';
import type { KafkaLike } from '../adapters/kafka/index.js';
import { ExitCode } from './cli-config.js';
import type { CliConfig, CliIo } from './cli-config.js';
import { hintFor, oneLine } from './explain.js';
import { DrainProgress } from './progress.js';
import { openStore } from './store.js';

/** How often `--drain` looks at the count relayed so far. */
const PROGRESS_TICK_MS = 250;

/**
 * kafkajs' own retries of a connection within one attempt of a relay
 * transaction: its defaults (5 retries from 300 ms, doubling) when they fit
 * in half of --timeout-ms, fewer when they do not, so an attempt against a
 * broker that is not there ends well within the timeout and the relay's
 * retry loop, which reports each attempt, decides what follows.
 */
export function kafkaClientRetry(timeoutMs: number): { initialRetryTime: number; retries: number } {
  const initialRetryTime = 300;
  let retries = 0;
  let waited = 0;
  while (retries < 5 && waited + initialRetryTime * 2 ** retries <= timeoutMs / 2) {
    waited += initialRetryTime * 2 ** retries;
    retries += 1;
  }
  return { initialRetryTime, retries };
}

/**
 * Reports each failed attempt of the relay's broker transactions, one line
 * each: the partition, the attempt (counted from the last transaction of the
 * partition that ended) and the error with its causes.
 */
export class AttemptLog {
  readonly #failures = new Map<number, number>();
  readonly #print: (line: string) => void;

  constructor(print: (line: string) => void) {
    this.#print = print;
  }

  failed(partition: number, err: unknown): void {
    const attempt = (this.#failures.get(partition) ?? 0) + 1;
    this.#failures.set(partition, attempt);
    this.#print(`relay: partition ${partition}, attempt ${attempt} failed: ${oneLine(err)}`);
  }

  /** The partition's transaction ended (committed, or given up): the next failure is attempt 1 again. */
  ended(partition: number): void {
    this.#failures.delete(partition);
  }
}

/**
 * The kafkajs client, with the producers it makes reporting a failed
 * connect or InitProducerId: the begin of a relay transaction, which fails
 * before the transaction exists (so before its afterAbort hooks could tell).
 */
function reportingKafka<K extends KafkaLike & KafkaSinkClientLike>(kafka: K, onBeginFailure: (transactionalId: string, err: unknown) => void): K {
  const reporting = <T>(transactionalId: string, call: () => Promise<T>): Promise<T> =>
    call().catch((err: unknown) => {
      onBeginFailure(transactionalId, err);
      throw err;
    });
  return new Proxy(kafka, {
    get(target, prop) {
      if (prop !== 'producer') return bound(target, prop);
      return (config: { transactionalId?: string }) => {
        const producer = target.producer(config as Parameters<K['producer']>[0]);
        const id = config.transactionalId ?? '';
        return new Proxy(producer, {
          get(p, key) {
            if (key === 'connect') return () => reporting(id, () => p.connect());
            if (key === 'transaction') return () => reporting(id, () => p.transaction());
            return bound(p, key);
          },
        });
      };
    },
  });
}

/** A member of `target` as a proxy hands it out: methods bound to the target, so they keep their private state. */
function bound(target: object, prop: string | symbol): unknown {
  const value: unknown = Reflect.get(target, prop, target);
  return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
}

/** The sink, with each partition's context reporting the attempts of its transactions that aborted. */
export function reportingSink<S extends RelaySink<MessageHandle>>(sink: S, log: AttemptLog): S {
  const contextFor = sink.contextFor?.bind(sink);
  if (contextFor === undefined) return sink;
  type RelayContext = ReturnType<typeof contextFor>;
  type Callback = Parameters<RelayContext['withTransaction']>[0];
  const made = new WeakMap<RelayContext, RelayContext>();
  const observe = (context: RelayContext, partition: number): RelayContext => {
    const withTransaction = (fn: Callback, options?: object): Promise<unknown> =>
      (context.withTransaction as (f: Callback, o?: object) => Promise<unknown>)(async (tx) => {
        tx.afterAbort((reason) => log.failed(partition, reason));
        return fn(tx);
      }, options).finally(() => log.ended(partition));
    return new Proxy(context, { get: (target, prop) => (prop === 'withTransaction' ? withTransaction : bound(target, prop)) });
  };
  return {
    ...sink,
    contextFor: (at: RelayPartition) => {
      const context = contextFor(at);
      let observed = made.get(context);
      if (observed === undefined) {
        observed = observe(context, at.partition);
        made.set(context, observed);
      }
      return observed;
    },
  };
}

/** The outbox partition of one of the relay's transactional ids, `<prefix>-<relayId>-<partition>`. */
function partitionOf(transactionalId: string, config: CliConfig): number | undefined {
  const prefix = `${config.transactionalIdPrefix}-${config.relayId}-`;
  if (!transactionalId.startsWith(prefix)) return undefined;
  const n = Number(transactionalId.slice(prefix.length));
  return Number.isInteger(n) ? n : undefined;
}

/**
 * The kafkajs `ssl` and `sasl` settings of --kafka-tls, --kafka-ca,
 * --kafka-cert, --kafka-key, --kafka-sasl, --kafka-username and the password,
 * with the files read now.
 * @throws ConfigError naming a file that cannot be read.
 */
export function kafkaSecurityOf(config: Pick<CliConfig, 'kafkaTls' | 'kafkaSasl'>): { ssl?: true | { ca?: string[]; cert?: string; key?: string }; sasl?: { mechanism: string; username: string; password: string } } {
  const read = (option: string, file: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read ${option} ${file}: ${(err as Error).message}`, { cause: err });
    }
  };
  const out: ReturnType<typeof kafkaSecurityOf> = {};
  const tls = config.kafkaTls;
  if (tls !== undefined) {
    const { ca, cert, key } = tls;
    out.ssl =
      ca === undefined && cert === undefined
        ? true
        : {
            ...(ca === undefined ? {} : { ca: [read('--kafka-ca', ca)] }),
            ...(cert === undefined ? {} : { cert: read('--kafka-cert', cert) }),
            ...(key === undefined ? {} : { key: read('--kafka-key', key) }),
          };
  }
  const sasl = config.kafkaSasl;
  if (sasl !== undefined) {
    const password = sasl.passwordFile === undefined ? (sasl.password as string) : read('--kafka-password-file', sasl.passwordFile).replace(/\r?\n$/, '');
    out.sasl = { mechanism: sasl.mechanism, username: sasl.username, password };
  }
  return out;
}

/** The same TLS and SASL settings as @platformatic/kafka connection options take them. */
function platformaticSecurityOf(security: ReturnType<typeof kafkaSecurityOf>): { tls?: object; sasl?: { mechanism: string; username: string; password: string } } {
  const out: ReturnType<typeof platformaticSecurityOf> = {};
  if (security.ssl !== undefined) out.tls = security.ssl === true ? {} : security.ssl;
  if (security.sasl !== undefined) out.sasl = { ...security.sasl, mechanism: security.sasl.mechanism.toUpperCase() };
  return out;
}

/** The relay's kafkajs client, reporting each failed producer request as its outbox partition's. */
async function kafkajsClient(
  config: CliConfig,
  clientId: string,
  security: ReturnType<typeof kafkaSecurityOf>,
  failed: (partition: number, err: unknown) => void,
): Promise<KafkaLike & KafkaSinkClientLike> {
  const { Kafka, logLevel } = (await import('kafkajs')) as unknown as {
    Kafka: new (c: unknown) => KafkaLike & KafkaSinkClientLike;
    logLevel: { NOTHING: number };
  };
  return reportingKafka(
    new Kafka({ clientId, brokers: config.kafkaBrokers, logLevel: logLevel.NOTHING, retry: kafkaClientRetry(config.timeoutMs), ...security }),
    (transactionalId, err) => {
      const partition = partitionOf(transactionalId, config);
      if (partition !== undefined) failed(partition, err);
    },
  );
}

/** `txkit relay`: until SIGTERM/SIGINT, or with --drain until what was pending is sent. */
export async function relay(config: CliConfig, io: CliIo): Promise<number> {
  if (config.kafkaBrokers.length === 0) throw new ConfigError('relay needs a broker: pass --kafka-brokers host:port or set KAFKA_BROKERS');
  let progress: DrainProgress | undefined;
  const print = (line: string): void => (progress === undefined ? io.err(`${line}\n`) : progress.note(line));
  const log = new AttemptLog(print);
  const security = kafkaSecurityOf(config);
  const clientId = `txkit-relay-${config.relayId}`;
  // A producer per outbox partition: relay processes of one relay id split the partitions through leases.
  // On @platformatic/kafka alone (its producers and its read of the positions), or on kafkajs.
  const sink = kafkaSink({
    kafka:
      config.kafkaClient === 'platformatic'
        ? { clientId, bootstrapBrokers: config.kafkaBrokers, ...platformaticSecurityOf(security) }
        : await kafkajsClient(config, clientId, security, (partition, err) => log.failed(partition, err)),
    transactionalIdPrefix: config.transactionalIdPrefix,
  });
  const { store, label, close } = await openStore(config, io);
  try {
    const r = new OutboxRelay({
      store,
      sink: reportingSink(sink, log),
      leases: { ttlMs: config.leaseTtlMs },
      relayId: config.relayId,
      batchSize: config.batchSize,
      pollIntervalMs: config.pollIntervalMs,
      retentionMs: config.retentionMs,
      retry: { deadlineMs: config.timeoutMs },
      onError: (err) => {
        const hint = hintFor(err, config);
        print([`relay: ${oneLine(err)}`, ...(hint === undefined ? [] : [`hint: ${hint}`])].join('\n'));
      },
    });
    try {
      if (config.drain) {
        const total = (await store.status()).partitions.reduce((n, p) => n + p.pending, 0);
        progress = new DrainProgress(io, total);
        const shown = progress;
        const tick = setInterval(() => shown.update(r.stats.relayed), PROGRESS_TICK_MS);
        try {
          await r.drain();
        } finally {
          clearInterval(tick);
          shown.finish(r.stats.relayed);
          progress = undefined;
        }
        io.out(`relayed ${r.stats.relayed} record(s) in ${r.stats.transactions} transaction(s)`);
        return ExitCode.OK;
      }
      r.start();
      io.out(`relay '${config.relayId}' running: ${config.kafkaBrokers.join(',')} <- ${label} (SIGTERM to stop)`);
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      await r.stop();
      io.out(`relay stopped after ${r.stats.relayed} record(s)`);
      return ExitCode.OK;
    } finally {
      await r.stop();
    }
  } finally {
    await sink.close();
    await close();
  }
}
