export const DEFAULT_PULSAR_VERSION: string;
export interface PulsarHandle {
  /** `pulsar://127.0.0.1:<port>`: the advertised port (a proxy's, with `advertisedPort`), else the broker's. */
  serviceUrl: string;
  /** `http://127.0.0.1:<port>` (admin REST API) */
  webServiceUrl: string;
  version: string;
  logFile: string;
  dataDir: string;
  pid: number;
  /** The broker's own port. */
  port: number;
  advertisedPort: number | undefined;
  reused: boolean;
  timings: Record<string, number>;
  stop(): Promise<void>;
  /** SIGKILL (a crash); the data dir stays for restart(). Only for a broker this handle started. */
  kill(): Promise<void>;
  /** Starts the broker again on the same data dir and ports; resolves once its transaction coordinator serves. */
  restart(): Promise<void>;
}
export interface StartPulsarOptions {
  version?: string;
  timeoutMs?: number;
  log?: ((line: string) => void) | false;
  /** State directory of this broker, apart from the shared one (TXKIT_STATE_DIR or the temp default). */
  stateDir?: string;
  /** The broker port (default: a free one). */
  port?: number;
  /** Lookups answer with this port (a proxy in front of the broker, which must already listen there). */
  advertisedPort?: number;
  /** standalone.conf overrides. */
  properties?: Record<string, string | number | boolean>;
  /** Superuser token the readiness probe and admin calls send, for a broker configured for token authentication. */
  authToken?: string;
}
export interface PulsarStatus {
  serviceUrl: string;
  webServiceUrl: string;
  version: string;
  pid: number;
  port: number;
  advertisedPort?: number;
  webPort: number;
  bookiePort: number;
  dataDir: string;
  logFile: string;
  startedAt: string;
}
export function startPulsar(options?: StartPulsarOptions): Promise<PulsarHandle>;
export function stopPulsar(): Promise<boolean>;
export function pulsarStatus(): Promise<PulsarStatus | undefined>;
export function probePulsar(host: string, port: number, options?: { timeoutMs?: number; authToken?: string }): Promise<{ serverVersion: string | undefined; transactionId: string }>;
