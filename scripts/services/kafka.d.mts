export const DEFAULT_KAFKA_VERSION: string;
export interface KafkaHandle {
  brokers: string;
  version: string;
  logFile: string;
  dataDir: string;
  pid: number;
  reused: boolean;
  stop(): Promise<void>;
}
export function startKafka(options?: { version?: string; timeoutMs?: number; log?: (line: string) => void }): Promise<KafkaHandle>;
export function stopKafka(): Promise<void>;
