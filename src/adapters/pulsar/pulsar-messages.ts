import { ConfigError } from '../../core/index.js';
import type { SendRequest } from '../../core/index.js';
import type { ProducerMessage } from '../../pulsar-client/producer.js';
import { fullTopicName } from '../../pulsar-client/topic-name.js';

export interface PreparedSend {
  /** The topic as the caller named it (reported back in the record metadata). */
  readonly topic: string;
  readonly fullTopic: string;
  readonly messages: ProducerMessage[];
}

/** Checks and converts the shared message shape before any I/O. */
export function prepare(requests: readonly SendRequest[]): PreparedSend[] {
  return requests.map((r) => ({
    topic: r.topic,
    fullTopic: fullTopicName(r.topic),
    messages: r.messages.map((m, i) => toProducerMessage(m, `send() to topic '${r.topic}', messages[${i}]`)),
  }));
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The shared message shape -> a Pulsar message (headers become string properties). */
function toProducerMessage(m: SendRequest['messages'][number], where: string): ProducerMessage {
  const message: ProducerMessage = { value: m.value };
  if (m.key !== undefined) message.key = m.key;
  if (m.partition !== undefined) message.partition = m.partition;
  if (m.headers !== undefined) {
    const properties: Record<string, string> = {};
    for (const [name, v] of Object.entries(m.headers)) {
      if (typeof v === 'string') properties[name] = v;
      else {
        try {
          properties[name] = utf8.decode(v);
        } catch {
          throw new ConfigError(`${where}.headers['${name}'] is binary; Pulsar properties are strings: encode it (e.g. base64) first`, {
            backend: 'pulsar',
          });
        }
      }
    }
    message.properties = properties;
  }
  return message;
}
