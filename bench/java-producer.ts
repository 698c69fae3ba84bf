// The official Java Kafka producer (bench/java/KafkaBenchProducer.java, compiled against
// kafka-clients from Maven Central) as a benchmark variant whose rounds interleave with
// txkit's: each round is one stdin command, timed by the JVM itself.
import type { Variant } from './harness.js';
import { startJavaRounds } from './java-rounds.js';

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
  const java = await startJavaRounds({
    coords: [`org.apache.kafka:kafka-clients:${o.version}`],
    source: 'KafkaBenchProducer.java',
    args: [o.brokers, o.topic, o.mode, String(o.messages), o.settings, o.transactionalId],
  });
  return {
    variant: {
      label: o.label,
      round: async (ops) => {
        const answer = await java.command(String(ops));
        const [wall, cpu] = answer.split(' ').map(Number);
        if (!Number.isFinite(wall) || !Number.isFinite(cpu)) throw new Error(`KafkaBenchProducer answered a round with '${answer}'`);
        return { wallNs: wall as number, cpuNs: cpu as number };
      },
    },
    close: () => java.close(),
  };
}
