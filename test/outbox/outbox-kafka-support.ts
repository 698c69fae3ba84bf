/**
 * What the outbox-on-Kafka tests share: a read_committed follower of a topic
 * (kafkajs, group per topic) and the txkit CLI as a child process.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import kafkajs from 'kafkajs';
import type { Consumer } from 'kafkajs';
import { OUTBOX_ID_HEADER, OUTBOX_SEQ_HEADER } from '../../src/outbox/index.js';
import { service } from '../support/services.js';
import { readCommittedWithJava } from '../kafka/kafka-support.js';

const brokers = service('kafka');
const root = new URL('../..', import.meta.url).pathname;

export interface Seen {
  key: string;
  value: string;
  id: string;
  /** `<outbox partition>:<seq>` of the record. */
  seq: string;
}

/** Follows a topic (created with 3 partitions if missing) from its beginning with a read_committed consumer. */
export async function follow(topic: string, partitions = 3): Promise<{ seen: Seen[]; consumer: Consumer }> {
  const kafka = new kafkajs.Kafka({ brokers: (brokers as string).split(','), clientId: 'outbox-reader', logLevel: kafkajs.logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
  await admin.disconnect();
  const consumer = kafka.consumer({ groupId: `reader-${topic}`, maxWaitTimeInMs: 100 });
  const seen: Seen[] = [];
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      seen.push({ key: String(message.key), value: String(message.value), id: String(message.headers?.[OUTBOX_ID_HEADER]), seq: String(message.headers?.[OUTBOX_SEQ_HEADER]) });
    },
  });
  return { seen, consumer };
}

/** Resolves when `check` holds, polling; rejects naming `what` after `timeoutMs`. */
export async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 10; !check(); delay = Math.min(delay * 2, 200)) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** The last bytes each CLI child wrote to stdout and stderr, for failure messages. */
const outputs = new WeakMap<ChildProcess, { tail: string; bytes: number }>();
const OUTPUT_TAIL_CHARS = 4_000;

/**
 * The txkit CLI run from the sources, as a child process (the crash tests kill it with SIGKILL). Its
 * output is read as it comes: a child writes to a pipe synchronously on Linux, so a pipe nobody reads
 * stops the child at its 64 KiB-th byte (a relay writes a line per failed attempt: 1-2 KB in a
 * normal run of the kill test, more the longer its retries go on).
 */
export function cli(args: string[]): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/outbox/relay-process.ts', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { tail: '', bytes: 0 };
  outputs.set(child, output);
  const collect = (chunk: Buffer): void => {
    output.bytes += chunk.length;
    output.tail = (output.tail + chunk.toString()).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return child;
}

/** What a CLI child wrote: its byte count and the last lines, for a failure message. */
export function outputOf(child: ChildProcess): string {
  const output = outputs.get(child);
  if (output === undefined) return '(not a cli() child)';
  return `pid ${child.pid ?? '?'}, ${output.bytes} bytes written, ending: ${output.tail.split('\n').slice(-8).join(' | ')}`;
}

/**
 * What a relay committed to a topic, as the official Java consumer
 * (read_committed) reads it: the verdict where several transactional
 * producers write one topic (kafkajs' read_committed filter can let records
 * of interleaved aborted transactions through).
 */
export async function committed(topic: string): Promise<Seen[]> {
  return (await readCommittedWithJava(brokers as string, topic)).map((r) => ({ key: r.key, value: r.value, id: r.outboxId, seq: r.outboxSeq }));
}
