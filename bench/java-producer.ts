// The official Java Kafka producer (bench/java/KafkaBenchProducer.java, compiled against
// kafka-clients from Maven Central) as a benchmark variant whose rounds interleave with
// txkit's: each round is one stdin command, timed by the JVM itself.
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { spawnJavaWitness } from '../test/support/java-witness.js';
import type { Variant } from './harness.js';

const SOURCES = fileURLToPath(new URL('./java/', import.meta.url));

export interface JavaProducerOptions {
  brokers: string;
  topic: string;
  /** One transaction of `messages` records per operation, or `messages` records then flush. */
  mode: 'transactional' | 'idempotent';
  messages: number;
  /** The client's defaults, or batch.size 1 MB and linger.ms 5. */
  settings: 'defaults' | 'tuned';
  transactionalId: string;
  /** kafka-clients version, e.g. the broker's. */
  version: string;
  label: string;
}

export interface JavaProducer {
  readonly variant: Variant;
  close(): Promise<void>;
}

/** Starts the JVM and waits until its producer is ready (transactions initialised). */
export async function startJavaProducer(o: JavaProducerOptions): Promise<JavaProducer> {
  const child = await spawnJavaWitness({
    coords: [`org.apache.kafka:kafka-clients:${o.version}`],
    source: 'KafkaBenchProducer.java',
    dir: SOURCES,
    args: [o.brokers, o.topic, o.mode, String(o.messages), o.settings, o.transactionalId],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4_000)));
  const waiting: { resolve(line: string): void; reject(err: Error): void }[] = [];
  const buffered: string[] = [];
  let ended: Error | undefined;
  const lines = readline.createInterface({ input: child.stdout as NodeJS.ReadableStream });
  lines.on('line', (line) => {
    const w = waiting.shift();
    if (w !== undefined) w.resolve(line);
    else buffered.push(line);
  });
  child.once('exit', (code, signal) => {
    ended = new Error(`${path.basename(SOURCES)}/KafkaBenchProducer exited (${signal ?? `code ${code}`}):\n${stderr}`);
    for (const w of waiting.splice(0)) w.reject(ended);
  });
  const next = (): Promise<string> => {
    const line = buffered.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (ended !== undefined) return Promise.reject(ended);
    return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  };
  const first = await next();
  if (first !== 'ready') throw new Error(`KafkaBenchProducer said '${first}' instead of ready:\n${stderr}`);
  return {
    variant: {
      label: o.label,
      round: async (ops) => {
        child.stdin?.write(`${ops}\n`);
        const [wall, cpu] = (await next()).split(' ').map(Number);
        if (!Number.isFinite(wall) || !Number.isFinite(cpu)) throw new Error(`KafkaBenchProducer answered a round with something else:\n${stderr}`);
        return { wallNs: wall as number, cpuNs: cpu as number };
      },
    },
    close: async () => {
      if (ended !== undefined) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.stdin?.end('quit\n');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
