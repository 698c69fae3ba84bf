/**
 * Brokers of the fault tests' own: started from the project's service
 * scripts with an isolated state directory (so the shared test brokers are
 * never touched), advertised on the port of a FaultProxy in front of them,
 * so every client connection after bootstrap goes through the proxy too.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startKafka } from '../../../scripts/services/kafka.mjs';
import type { KafkaHandle } from '../../../scripts/services/kafka.mjs';
import { FaultProxy } from './fault-proxy.js';

export interface ProxiedKafka {
  readonly broker: KafkaHandle;
  readonly proxy: FaultProxy;
  /** Bootstrap address for clients: the proxy. */
  readonly brokers: string;
  /**
   * With `proxyInternal`: a second proxy on the broker's INTERNAL listener,
   * which carries the broker's traffic to itself (the transaction markers
   * that complete a commit after EndTxn was answered).
   */
  readonly internalProxy: FaultProxy | undefined;
  close(): Promise<void>;
}

const log = (line: string): void => console.log(`[fault-kafka] ${line}`);

/**
 * A private single-node Kafka whose clients all go through a FaultProxy;
 * with `proxyInternal`, the broker's own INTERNAL traffic goes through a
 * second one (it is started before any transaction needs it).
 */
export async function startProxiedKafka(
  properties: Record<string, string | number | boolean> = {},
  { proxyInternal = false }: { proxyInternal?: boolean } = {},
): Promise<ProxiedKafka> {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'txkit-fault-state-'));
  const proxyPort = await freePort();
  const internalAdvertisedPort = proxyInternal ? await freePort() : undefined;
  let broker: KafkaHandle | undefined;
  try {
    broker = await startKafka({ stateDir, advertisedPort: proxyPort, ...(internalAdvertisedPort === undefined ? {} : { internalAdvertisedPort }), properties, log });
    const proxy = new FaultProxy({ target: { host: '127.0.0.1', port: broker.port }, framing: 'length-prefixed', port: proxyPort });
    await proxy.start();
    let internalProxy: FaultProxy | undefined;
    if (internalAdvertisedPort !== undefined) {
      internalProxy = new FaultProxy({ target: { host: '127.0.0.1', port: broker.internalPort as number }, framing: 'length-prefixed', port: internalAdvertisedPort });
      await internalProxy.start();
    }
    const started = broker;
    return {
      broker: started,
      proxy,
      internalProxy,
      brokers: `127.0.0.1:${proxyPort}`,
      close: async () => {
        await proxy.close();
        await internalProxy?.close();
        await started.stop();
        rmSync(stateDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await broker?.stop();
    rmSync(stateDir, { recursive: true, force: true });
    throw err;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
