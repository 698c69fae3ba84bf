export const DEFAULT_PULSAR_VERSION: string;
export interface PulsarHandle {
  /** `pulsar://127.0.0.1:<port>` */
  serviceUrl: string;
  /** `http://127.0.0.1:<port>` (admin REST API) */
  webServiceUrl: string;
  version: string;
  logFile: string;
  dataDir: string;
  pid: number;
  reused: boolean;
  timings: Record<string, number>;
  stop(): Promise<void>;
}
export interface PulsarStatus {
  serviceUrl: string;
  webServiceUrl: string;
  version: string;
  pid: number;
  port: number;
  webPort: number;
  bookiePort: number;
  dataDir: string;
  logFile: string;
  startedAt: string;
}
export function startPulsar(options?: { version?: string; timeoutMs?: number; log?: ((line: string) => void) | false }): Promise<PulsarHandle>;
export function stopPulsar(): Promise<boolean>;
export function pulsarStatus(): Promise<PulsarStatus | undefined>;
export function probePulsar(host: string, port: number, options?: { timeoutMs?: number }): Promise<{ serverVersion: string | undefined; transactionId: string }>;
