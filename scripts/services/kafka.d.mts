export const DEFAULT_KAFKA_VERSION: string;
export interface KafkaHandle {
  /** Where clients bootstrap: the advertised port (a proxy's, with `advertisedPort`), else the broker's. */
  brokers: string;
  version: string;
  /** The broker's own client listener port. */
  port: number;
  advertisedPort: number | undefined;
  /** The INTERNAL listener's own port (with advertisedPort). */
  internalPort: number | undefined;
  logFile: string;
  dataDir: string;
  pid: number;
  reused: boolean;
  timings: Record<string, number>;
  /**
   * Drops this handle's lease on the broker. The last user of a broker that test runs
   * started stops it (a run that reused another run's broker keeps it while it runs);
   * a broker kept warm (keepKafka, `kafka.mjs start`) keeps running.
   */
  stop(): Promise<void>;
  /** SIGKILL (a crash); the data dir stays for restart(). Only for a broker this handle started. */
  kill(): Promise<void>;
  /** Starts the broker again on the same data dir and ports; resolves once it serves. */
  restart(): Promise<void>;
}
export interface StartKafkaOptions {
  version?: string;
  timeoutMs?: number;
  log?: ((line: string) => void) | false;
  /** State directory of this broker, apart from the shared one (TXKIT_STATE_DIR or the temp default). */
  stateDir?: string;
  /** Advertise the client listener on this port (a proxy in front of the broker); adds an INTERNAL listener. */
  advertisedPort?: number;
  /** With advertisedPort: advertise the INTERNAL listener (the broker's own traffic, such as transaction markers) on this port, where a second proxy forwards to `internalPort`. */
  internalAdvertisedPort?: number;
  /** Client listeners of other security protocols beside PLAINTEXT (configure them through `properties`). */
  extraListeners?: { name: string; port: number; protocol: string }[];
  /** server.properties overrides. */
  properties?: Record<string, string | number | boolean>;
}
export function startKafka(options?: StartKafkaOptions): Promise<KafkaHandle>;
/** Keeps the running broker warm: handles' stop() leaves it running; stopKafka() ends it. */
export function keepKafka(options?: { stateDir?: string }): Promise<void>;
/** Stops the recorded broker, kept warm or not; false when none was running. */
export function stopKafka(options?: { stateDir?: string }): Promise<boolean>;

/** One node of a cluster made by startKafkaCluster. */
export interface KafkaClusterNode {
  readonly nodeId: number;
  /** Its client listener port on loopback. */
  readonly port: number;
  readonly pid: number;
  readonly logFile: string;
  /** SIGKILL (a crash); the data dir stays for restart(). */
  kill(): Promise<void>;
  /** Starts the node again on its data dir and ports; resolves once it serves and lists the whole cluster. */
  restart(): Promise<void>;
}
export interface KafkaClusterHandle {
  /** Bootstrap list of every node. */
  readonly brokers: string;
  readonly version: string;
  readonly nodes: readonly KafkaClusterNode[];
  /** Stops every node and removes their data. */
  stop(): Promise<void>;
}
export interface StartKafkaClusterOptions {
  /** A state directory of the cluster's own. */
  stateDir: string;
  /** Nodes, each broker and controller. @default 3 */
  size?: number;
  version?: string;
  timeoutMs?: number;
  log?: ((line: string) => void) | false;
  /** server.properties overrides for every node. */
  properties?: Record<string, string | number | boolean>;
}
/** A private KRaft cluster on loopback: replication factor `size`, min.insync.replicas `size - 1`. */
export function startKafkaCluster(options: StartKafkaClusterOptions): Promise<KafkaClusterHandle>;
