#!/usr/bin/env node
// Real Apache Pulsar standalone broker (broker + one in-process bookie, RocksDB
// metadata store) for txkit's tests, built from Maven Central jars and run with the
// machine's Java - no Docker, no tarball download. Transaction coordinator on, broker
// deduplication on, functions worker and stream storage off, data under a temp dir,
// every port on loopback. Usable as a module (startPulsar/stopPulsar) and as a CLI:
//
//   node scripts/services/pulsar.mjs start [--version 4.0.7] [--timeout 180000]
//   node scripts/services/pulsar.mjs status
//   node scripts/services/pulsar.mjs stop
//
// `start` prints `PULSAR_SERVICE_URL=pulsar://127.0.0.1:<port>` and
// `PULSAR_WEB_SERVICE_URL=http://127.0.0.1:<port>` on stdout (progress goes to stderr)
// and reuses a broker it started earlier if that one still answers.

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import {
  LOOPBACK,
  cacheDir,
  findFreePorts,
  isOwnProcess,
  lifecycle,
  markKept,
  javaCommand,
  makeLogger,
  makeTempDataDir,
  readJson,
  removeDir,
  resolveMavenClasspath,
  spawnDetachedJava,
  stateDir,
  stopProcess,
  tailFile,
  waitFor,
  withLock,
  writeFileAtomic,
} from './service-kit.mjs';

// 4.0.x is the LTS line. 4.0.8 cannot be resolved from Maven Central: its
// org.apache.pulsar:jetcd-core-shaded:4.0.8 is not published there (404), so Maven falls
// back to the Confluent repository the Pulsar parent pom declares, which is unreachable here.
export const DEFAULT_PULSAR_VERSION = process.env.TXKIT_PULSAR_VERSION || '4.0.7';

const defaultLog = makeLogger('txkit:pulsar');
// `dir` is the state directory: TXKIT_STATE_DIR's (shared) one unless a caller isolates its own broker.
const stateFile = (dir = stateDir()) => path.join(dir, 'pulsar.json');
const pidFile = (dir = stateDir()) => path.join(dir, 'pulsar.pid');
const lockDir = (dir = stateDir()) => path.join(dir, 'pulsar.lock');

/** The partitioned topic whose partitions are the transaction coordinators (TC id = partition index). */
const TC_ASSIGN_TOPIC = 'persistent://pulsar/system/transaction_coordinator_assign';

// ---------------------------------------------------------------------------
// Version-specific bits

function parseVersion(version) {
  const match = /^(\d+)\.(\d+)\.(\d+)$/.exec(String(version));
  if (!match) throw new Error(`invalid Pulsar version '${version}' (expected e.g. 4.0.7)`);
  const [major, minor] = [Number(match[1]), Number(match[2])];
  // Standalone on a RocksDB metadata store without ZooKeeper (PIP-117) and TC_CLIENT_CONNECT need 3.x.
  if (major < 3) throw new Error(`Pulsar ${version} is not supported: use 3.0 or newer`);
  return { major, minor };
}

/**
 * Maven coordinates mirroring the distribution's lib/ folder. pulsar-broker's runtime
 * dependencies carry PulsarStandaloneStarter, the managed ledger, the in-process bookie
 * and the RocksDB metadata store; what the pom leaves out is the log4j2 binding the
 * tarball ships, without which the broker would log nothing. Pulsar moved to slf4j 2 in 3.3.
 */
function coordsFor(version) {
  const { major, minor } = parseVersion(version);
  const slf4j2 = major > 3 || minor >= 3;
  const log4j = slf4j2 ? '2.23.1' : '2.18.0';
  return [
    `org.apache.pulsar:pulsar-broker:${version}`,
    `org.apache.logging.log4j:${slf4j2 ? 'log4j-slf4j2-impl' : 'log4j-slf4j-impl'}:${log4j}`,
    `org.apache.logging.log4j:log4j-core:${log4j}`,
  ];
}

/** The loopback interface's name (`lo` on Linux): the bookie binds to an interface, not an address. */
function loopbackInterface() {
  for (const [name, addresses] of Object.entries(os.networkInterfaces())) {
    if (addresses?.some((a) => a.internal && a.address === LOOPBACK)) return name;
  }
  throw new Error(`no network interface carries ${LOOPBACK}; the bookie needs one to bind to loopback`);
}

/**
 * standalone.conf is read twice: as the broker's ServiceConfiguration and as the
 * bookie's ServerConfiguration, so both kinds of keys live in one file.
 */
function standaloneConf({ port, webPort, bookiePort, advertisedPort, properties = {} }) {
  const props = {
    clusterName: 'standalone',
    // Empty: standalone then keeps metadata in RocksDB under --metadata-dir (PIP-117).
    metadataStoreUrl: '',
    bindAddress: LOOPBACK,
    advertisedAddress: LOOPBACK,
    brokerServicePort: port,
    webServicePort: webPort,
    // What txkit's Pulsar adapter needs: transactions and producer deduplication.
    transactionCoordinatorEnabled: true,
    brokerDeduplicationEnabled: true,
    // Acknowledging single messages of a batched entry (in transactions, with ack sets)
    // is tracked per message instead of per entry, so a partly acknowledged batch is
    // redelivered only for the rest.
    acknowledgmentAtBatchIndexLevelEnabled: true,
    systemTopicEnabled: true,
    topicLevelPoliciesEnabled: true,
    functionsWorkerEnabled: false,
    allowAutoTopicCreation: true,
    allowAutoTopicCreationType: 'non-partitioned',
    // Tests create topics and come back to them; nothing may vanish or move under them.
    brokerDeleteInactiveTopicsEnabled: false,
    // One broker: nothing to balance (as Pulsar's own conf/standalone.conf).
    loadManagerClassName: 'org.apache.pulsar.broker.loadbalance.NoopLoadManager',
    loadBalancerEnabled: false,
    // One bookie: every ensemble and quorum is 1.
    managedLedgerDefaultEnsembleSize: 1,
    managedLedgerDefaultWriteQuorum: 1,
    managedLedgerDefaultAckQuorum: 1,
    // Sized for a 2-core CI box next to other test services rather than for throughput.
    numIOThreads: 2,
    numOrderedExecutorThreads: 2,
    numHttpServerThreads: 4,
    numExecutorThreadPoolSize: 2,
    numCacheExecutorThreadPoolSize: 2,
    managedLedgerNumSchedulerThreads: 2,
    bookkeeperClientNumWorkerThreads: 2,
    bookkeeperNumberOfChannelsPerBookie: 1,
    managedLedgerCacheSizeMB: 32,
    exposeTopicLevelMetricsInPrometheus: false,
    brokerShutdownTimeoutMs: 5000,
    // Bookie: loopback only, on the port we picked, no fsync per entry (test data is disposable).
    listeningInterface: loopbackInterface(),
    allowLoopback: true,
    allowEphemeralPorts: true,
    bookiePort,
    journalSyncData: false,
    // Flush the journal as soon as it has nothing queued instead of waiting up to 2 ms to
    // group writes: a lone transactional append (the transaction buffer writes them one at
    // a time per partition) would otherwise pay the whole group wait.
    journalFlushWhenQueueEmpty: true,
    journalMaxGroupWaitMSec: 1,
    ledgerStorageClass: 'org.apache.bookkeeper.bookie.storage.ldb.DbLedgerStorage',
    httpServerEnabled: false,
    dbStorage_writeCacheMaxSizeMb: 16,
    dbStorage_readAheadCacheMaxSizeMb: 16,
    dbStorage_rocksDB_blockCacheSize: 16 * 1024 * 1024,
    // Lookups (and the broker's own client) then answer with the advertised port: a proxy's in
    // front of the broker, so every connection after the first goes through it too.
    ...(advertisedPort === undefined
      ? {}
      : { advertisedListeners: `internal:pulsar://${LOOPBACK}:${advertisedPort}`, internalListenerName: 'internal' }),
    // The caller's own overrides come last.
    ...properties,
  };
  return `${Object.entries(props)
    .map(([key, value]) => `${key}=${String(value).replaceAll('\\', '\\\\')}`)
    .join('\n')}\n`;
}

function logConfig(level) {
  return [
    'status = warn',
    'appender.out.type = Console',
    'appender.out.name = OUT',
    'appender.out.layout.type = PatternLayout',
    'appender.out.layout.pattern = [%d] %p %m (%c)%n',
    `rootLogger.level = ${level}`,
    'rootLogger.appenderRef.out.ref = OUT',
    // Per-request HTTP lines and bookie chatter drown what matters in a test log.
    'logger.jetty.name = org.eclipse.jetty',
    'logger.jetty.level = warn',
    'logger.bk.name = org.apache.bookkeeper',
    'logger.bk.level = warn',
    '',
  ].join('\n');
}

const BROKER_JVM_ARGS = [
  '-Xms128m',
  '-Xmx640m',
  '-XX:MaxDirectMemorySize=256m',
  '-XX:+UseG1GC',
  '-XX:MaxGCPauseMillis=20',
  '-XX:+ExitOnOutOfMemoryError',
  '-Djava.awt.headless=true',
  '-Dio.netty.tryReflectionSetAccessible=true',
  // The module openings bin/pulsar passes on Java 17 (netty, load-manager metrics, ...).
  ...[
    'java.base/java.io',
    'java.base/java.lang',
    'java.base/java.nio',
    'java.base/java.util.zip',
    'java.base/jdk.internal.misc',
    'java.base/jdk.internal.platform',
    'java.base/sun.net',
    'java.management/sun.management',
    'jdk.management/com.sun.management.internal',
  ].flatMap((pkg) => ['--add-opens', `${pkg}=ALL-UNNAMED`]),
];

// ---------------------------------------------------------------------------
// Pulsar binary protocol: just enough to ask the broker whether its transaction
// coordinator serves (CONNECT, LOOKUP, TC_CLIENT_CONNECT, NEW_TXN, END_TXN). Plain JS
// protobuf so this script runs before `npm install`; field numbers from PulsarApi.proto.

const CMD = {
  CONNECT: 2,
  CONNECTED: 3,
  ERROR: 14,
  LOOKUP: 23,
  LOOKUP_RESPONSE: 24,
  NEW_TXN: 50,
  NEW_TXN_RESPONSE: 51,
  END_TXN: 56,
  END_TXN_RESPONSE: 57,
  TC_CLIENT_CONNECT_REQUEST: 62,
  TC_CLIENT_CONNECT_RESPONSE: 63,
};
const SERVER_ERRORS = [
  'UnknownError', 'MetadataError', 'PersistenceError', 'AuthenticationError', 'AuthorizationError', 'ConsumerBusy',
  'ServiceNotReady', 'ProducerBlockedQuotaExceededError', 'ProducerBlockedQuotaExceededException', 'ChecksumError',
  'UnsupportedVersionError', 'TopicNotFound', 'SubscriptionNotFound', 'ConsumerNotFound', 'TooManyRequests',
  'TopicTerminatedError', 'ProducerBusy', 'InvalidTopicName', 'IncompatibleSchema', 'ConsumerAssignError',
  'TransactionCoordinatorNotFound', 'InvalidTxnStatus', 'NotAllowedError', 'TransactionConflict',
  'TransactionNotFound', 'ProducerFenced',
];

function varint(value) {
  let v = BigInt(value);
  const bytes = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    bytes.push(b);
  } while (v > 0n);
  return Buffer.from(bytes);
}

/** One protobuf field: strings and Buffers length-delimited, numbers/bigints as varints. */
function pbField(number, value) {
  if (typeof value === 'string') value = Buffer.from(value);
  if (Buffer.isBuffer(value)) return Buffer.concat([varint((number << 3) | 2), varint(value.length), value]);
  return Buffer.concat([varint(number << 3), varint(value)]);
}

/** Decodes a protobuf message into field number -> values (varints as bigint, bytes as Buffer). */
function pbParse(buffer) {
  const fields = new Map();
  let offset = 0;
  const readVarint = () => {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (offset >= buffer.length) throw new Error('truncated varint');
      const b = buffer[offset++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
    }
    throw new Error('varint too long');
  };
  while (offset < buffer.length) {
    const tag = readVarint();
    const number = Number(tag >> 3n);
    const wireType = Number(tag & 7n);
    let value;
    if (wireType === 0) value = readVarint();
    else if (wireType === 2) {
      const length = Number(readVarint());
      if (offset + length > buffer.length) throw new Error('truncated field');
      value = buffer.subarray(offset, (offset += length));
    } else if (wireType === 1) value = buffer.subarray(offset, (offset += 8));
    else if (wireType === 5) value = buffer.subarray(offset, (offset += 4));
    else throw new Error(`unsupported wire type ${wireType}`);
    if (!fields.has(number)) fields.set(number, []);
    fields.get(number).push(value);
  }
  return fields;
}

/** A simple command frame: [totalSize][commandSize][BaseCommand{type, <type>: inner}]. */
function commandFrame(type, ...innerFields) {
  const command = Buffer.concat([pbField(1, type), pbField(type, Buffer.concat(innerFields))]);
  const header = Buffer.alloc(8);
  header.writeUInt32BE(command.length + 4, 0);
  header.writeUInt32BE(command.length, 4);
  return Buffer.concat([header, command]);
}

/** One TCP connection exchanging Pulsar command frames; answers the broker's PINGs. */
function openPulsarConnection(host, port, timeoutMs) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let pending = Buffer.alloc(0);
    const waiters = [];
    const fail = (error) => {
      socket.destroy();
      for (const w of waiters.splice(0)) w.reject(error);
      reject(error);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`)));
    socket.on('error', fail);
    socket.on('close', () => fail(new Error(`${host}:${port} closed the connection`)));
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const size = pending.readUInt32BE(0);
        if (size > 16 * 1024 * 1024) return fail(new Error(`implausible frame size ${size}`));
        if (pending.length < 4 + size) return;
        const commandSize = pending.readUInt32BE(4);
        let command;
        try {
          command = pbParse(pending.subarray(8, 8 + commandSize));
        } catch (error) {
          return fail(error);
        }
        pending = pending.subarray(4 + size);
        const type = Number(command.get(1)?.[0] ?? 0n);
        const inner = pbParse(command.get(type)?.[0] ?? Buffer.alloc(0));
        if (type === 18) socket.write(commandFrame(19)); // PING -> PONG
        else waiters.shift()?.resolve({ type, inner });
      }
    });
    socket.once('connect', () =>
      resolve({
        request(frame) {
          return new Promise((done, rejectRequest) => {
            waiters.push({ resolve: done, reject: rejectRequest });
            socket.write(frame);
          });
        },
        close: () => socket.destroy(),
      }),
    );
  });
}

function expectResponse(step, response, type, errorField, messageField) {
  if (response.type === CMD.ERROR) {
    const code = Number(response.inner.get(2)?.[0] ?? 0n);
    throw new Error(`${step}: ${SERVER_ERRORS[code] ?? code}: ${response.inner.get(3)?.[0]?.toString() ?? ''}`);
  }
  if (response.type !== type) throw new Error(`${step}: unexpected answer (command type ${response.type})`);
  const error = response.inner.get(errorField)?.[0];
  if (error !== undefined) {
    const code = Number(error);
    throw new Error(`${step}: ${SERVER_ERRORS[code] ?? code}: ${response.inner.get(messageField)?.[0]?.toString() ?? ''}`);
  }
  return response.inner;
}

/**
 * Connects, finds the broker of transaction coordinator 0, connects the TC client and
 * runs one empty transaction (NEW_TXN, then END_TXN abort): the broker is ready when
 * the transaction coordinator serves, not merely when its port accepts.
 */
export async function probePulsar(host, port, { timeoutMs = 10_000, authToken } = {}) {
  const connection = await openPulsarConnection(host, port, timeoutMs);
  try {
    // With authToken (a broker with token authentication): auth_method_name 'token' (5) and auth_data (3).
    const auth = authToken === undefined ? [] : [pbField(5, 'token'), pbField(3, authToken)];
    const connected = expectResponse(
      'CONNECT',
      await connection.request(commandFrame(CMD.CONNECT, pbField(1, 'txkit-probe'), pbField(4, 19), ...auth)),
      CMD.CONNECTED,
      0,
      0,
    );
    const serverVersion = connected.get(1)?.[0]?.toString();
    const lookup = expectResponse(
      'LOOKUP transaction coordinator 0',
      await connection.request(commandFrame(CMD.LOOKUP, pbField(1, `${TC_ASSIGN_TOPIC}-partition-0`), pbField(2, 1))),
      CMD.LOOKUP_RESPONSE,
      6,
      7,
    );
    if (Number(lookup.get(3)?.[0] ?? 2n) !== 1) throw new Error('LOOKUP transaction coordinator 0: not served by this broker yet');
    expectResponse(
      'TC_CLIENT_CONNECT',
      await connection.request(commandFrame(CMD.TC_CLIENT_CONNECT_REQUEST, pbField(1, 2), pbField(2, 0))),
      CMD.TC_CLIENT_CONNECT_RESPONSE,
      2,
      3,
    );
    // txn_ttl_seconds carries milliseconds on the wire (the broker passes it on as timeoutInMills).
    const txn = expectResponse(
      'NEW_TXN',
      await connection.request(commandFrame(CMD.NEW_TXN, pbField(1, 3), pbField(2, 30_000), pbField(3, 0))),
      CMD.NEW_TXN_RESPONSE,
      4,
      5,
    );
    const least = txn.get(2)?.[0] ?? 0n;
    const most = txn.get(3)?.[0] ?? 0n;
    expectResponse(
      'END_TXN abort',
      await connection.request(commandFrame(CMD.END_TXN, pbField(1, 4), pbField(2, least), pbField(3, most), pbField(4, 1))),
      CMD.END_TXN_RESPONSE,
      4,
      5,
    );
    return { serverVersion, transactionId: `(${most},${least})` };
  } finally {
    connection.close();
  }
}

// ---------------------------------------------------------------------------
// Admin REST (loopback only)

/** The admin API's Authorization header for a broker with token authentication. */
function adminHeaders(authToken) {
  return authToken === undefined ? {} : { authorization: `Bearer ${authToken}` };
}

async function adminGet(webPort, urlPath, authToken) {
  const response = await globalThis.fetch(`http://${LOOPBACK}:${webPort}${urlPath}`, { headers: adminHeaders(authToken), signal: AbortSignal.timeout(5_000) });
  if (response.status === 404) return undefined;
  if (!response.ok) throw new Error(`GET ${urlPath}: HTTP ${response.status} ${await response.text()}`);
  return response.json();
}

/**
 * The transaction coordinators are the partitions of TC_ASSIGN_TOPIC. Standalone creates
 * it (1 partition) once its namespaces exist when transactionCoordinatorEnabled is on;
 * should a broker come up without it, we create it, as `pulsar initialize-transaction-
 * coordinator-metadata` would. Returns the number of coordinators, or 0 while standalone
 * is still setting up.
 */
async function ensureTransactionCoordinatorMetadata(webPort, { graceOver, say, authToken }) {
  const metadataPath = '/admin/v2/persistent/pulsar/system/transaction_coordinator_assign/partitions';
  const metadata = await adminGet(webPort, metadataPath, authToken);
  if (metadata?.partitions > 0) return metadata.partitions;
  // Asked in this order so the broker does not log an error per poll while the tenant is missing.
  const tenants = await adminGet(webPort, '/admin/v2/tenants', authToken);
  if (!Array.isArray(tenants) || !tenants.includes('pulsar')) return 0;
  const namespaces = await adminGet(webPort, '/admin/v2/namespaces/pulsar', authToken);
  if (!Array.isArray(namespaces) || !namespaces.includes('pulsar/system')) return 0;
  // Standalone creates it right after pulsar/system: give it that chance before stepping in.
  if (!graceOver()) return 0;
  say('transaction coordinator metadata missing: creating it with 1 coordinator');
  const response = await globalThis.fetch(`http://${LOOPBACK}:${webPort}${metadataPath}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', ...adminHeaders(authToken) },
    body: '1',
    signal: AbortSignal.timeout(10_000),
  });
  // 409: created meanwhile by standalone itself.
  if (!response.ok && response.status !== 409) {
    throw new Error(`creating ${TC_ASSIGN_TOPIC}: HTTP ${response.status} ${await response.text()}`);
  }
  return 1;
}

async function isServing(state) {
  await probePulsar(LOOPBACK, state.port, { authToken: state.authToken });
  return true;
}

// ---------------------------------------------------------------------------
// Lifecycle

/** The broker recorded in the state file, if its process is still the one we started and it answers. */
async function runningInstance(dir) {
  const state = readJson(stateFile(dir));
  if (!state || !isOwnProcess(state.pid, state.dataDir)) return { state, running: false };
  try {
    return { state, running: await isServing(state) };
  } catch {
    return { state, running: false };
  }
}

async function teardown(state, dir) {
  if (!state) return false;
  const stopped = await stopProcess(state.pid, { marker: state.dataDir });
  removeDir(state.dataDir);
  const current = readJson(stateFile(dir));
  if (!current || current.pid === state.pid) {
    fs.rmSync(stateFile(dir), { force: true });
    fs.rmSync(pidFile(dir), { force: true });
  }
  return stopped;
}

function urls(state) {
  return {
    serviceUrl: `pulsar://${LOOPBACK}:${state.advertisedPort ?? state.port}`,
    webServiceUrl: `http://${LOOPBACK}:${state.webPort}`,
  };
}

/** Runs standalone on the state's data dir (new or after a kill) and waits until its transaction coordinator serves. */
async function launch(state, { dir, timeoutMs, say, t0 = Date.now() }) {
  const classpath = await resolveMavenClasspath(coordsFor(state.version), cacheDir(), { log: say });
  const { dataDir } = state;
  const pid = spawnDetachedJava({
    classpath,
    mainClass: 'org.apache.pulsar.PulsarStandaloneStarter',
    args: [
      '--config', path.join(dataDir, 'standalone.conf'),
      '--no-functions-worker',
      '--no-stream-storage',
      '--metadata-dir', path.join(dataDir, 'metadata'),
      '--bookkeeper-dir', path.join(dataDir, 'bookkeeper'),
      '--bookkeeper-port', String(state.bookiePort),
      // Must not exist: standalone picks ZooKeeper over RocksDB when it finds ZK data here.
      '--zookeeper-dir', path.join(dataDir, 'zookeeper'),
    ],
    jvmArgs: [...BROKER_JVM_ARGS, `-Dlog4j2.configurationFile=${pathToFileURL(path.join(dataDir, 'log4j2.properties')).href}`],
    logFile: state.logFile,
    pidFile: pidFile(dir),
    cwd: dataDir,
  });
  state.pid = pid;
  writeFileAtomic(stateFile(dir), JSON.stringify(state, null, 2));
  say(`Pulsar ${state.version} starting (pid ${pid}, port ${state.port}, web ${state.webPort}, log ${state.logFile})`);

  const alive = () => (isOwnProcess(pid, dataDir) ? undefined : 'the broker process exited');
  let systemNamespaceSeenAt;
  await waitFor(
    async () => {
      const coordinators = await ensureTransactionCoordinatorMetadata(state.webPort, {
        say,
        authToken: state.authToken,
        graceOver: () => {
          systemNamespaceSeenAt ??= Date.now();
          return Date.now() - systemNamespaceSeenAt > 15_000;
        },
      });
      return coordinators > 0;
    },
    { timeoutMs, intervalMs: 250, description: `Pulsar ${state.version} to set up its namespaces and transaction coordinator metadata`, abort: alive },
  );
  const t2 = Date.now();
  await waitFor(() => isServing(state), {
    timeoutMs: Math.max(10_000, timeoutMs - (t2 - t0)),
    intervalMs: 250,
    description: `Pulsar ${state.version} on ${LOOPBACK}:${state.port} to run a transaction (TC_CLIENT_CONNECT, NEW_TXN, END_TXN)`,
    abort: alive,
  });
}

function toHandle(state, { reused, timings, dir, timeoutMs, say }) {
  const handle = {
    ...urls(state),
    version: state.version,
    pid: state.pid,
    port: state.port,
    advertisedPort: state.advertisedPort,
    logFile: state.logFile,
    dataDir: state.dataDir,
    reused,
    timings,
  };
  return Object.assign(handle, lifecycle(handle, { name: 'Pulsar', state, stateFile: stateFile(dir), reused, lock: lockDir(dir), teardown: (st) => teardown(st, dir), launch: (st) => launch(st, { dir, timeoutMs, say }) }));
}

/**
 * Starts (or reuses) the txkit test broker. Resolves once the broker's transaction
 * coordinator runs a real transaction over the binary protocol.
 *
 * `stateDir` keeps this broker's state apart from the shared one (tests that kill or
 * proxy a broker of their own); `port` fixes the broker port (a proxy in front of it
 * must know it before the broker starts, since the broker's own client goes through
 * it); `advertisedPort` makes lookups answer with that port; `properties` override
 * standalone.conf entries; `authToken` is the superuser token the readiness probe and
 * the admin calls send to a broker configured (through `properties`) for token
 * authentication.
 *
 * @param {{ version?: string, timeoutMs?: number, log?: ((message: string) => void) | false, stateDir?: string,
 *   port?: number, advertisedPort?: number, properties?: Record<string, string | number | boolean>, authToken?: string }} [options]
 */
export async function startPulsar({
  version = DEFAULT_PULSAR_VERSION,
  timeoutMs = 180_000,
  log = defaultLog,
  stateDir: dir = stateDir(),
  port: fixedPort,
  advertisedPort,
  properties = {},
  authToken,
} = {}) {
  const say = log || (() => {});
  const coords = coordsFor(version);
  javaCommand();
  const t0 = Date.now();
  fs.mkdirSync(dir, { recursive: true });

  return withLock(lockDir(dir), async () => {
    const { state: previous, running } = await runningInstance(dir);
    if (running) {
      if (previous.version !== version || previous.advertisedPort !== advertisedPort) {
        throw new Error(
          `a Pulsar ${previous.version} broker started by txkit is already running at ${urls(previous).serviceUrl} ` +
            `(state in ${dir}); run 'node scripts/services/pulsar.mjs stop' before starting ${version} with other listeners`,
        );
      }
      return toHandle(previous, { reused: true, timings: { totalMs: Date.now() - t0 }, dir, timeoutMs, say });
    }
    await teardown(previous, dir);

    await resolveMavenClasspath(coords, cacheDir(), { log: say });
    const t1 = Date.now();

    const dataDir = makeTempDataDir('pulsar');
    const logFile = path.join(dataDir, 'pulsar.log');
    let state;
    try {
      // The caller's port (behind a proxy) is free until the broker binds it: none of the others may be it.
      const [freePort, webPort, bookiePort] = await findFreePorts(3, { exclude: [fixedPort, advertisedPort].filter((p) => p !== undefined) });
      const port = fixedPort ?? freePort;
      fs.writeFileSync(path.join(dataDir, 'standalone.conf'), standaloneConf({ port, webPort, bookiePort, advertisedPort, properties }));
      fs.writeFileSync(path.join(dataDir, 'log4j2.properties'), logConfig('info'));
      state = {
        version,
        pid: 0,
        port,
        webPort,
        bookiePort,
        ...(advertisedPort === undefined ? {} : { advertisedPort }),
        ...(authToken === undefined ? {} : { authToken }),
        dataDir,
        logFile,
        startedAt: new Date().toISOString(),
      };
      await launch(state, { dir, timeoutMs, say, t0 });
      const t3 = Date.now();
      const timings = { resolveMs: t1 - t0, startToReadyMs: t3 - t1, totalMs: t3 - t0 };
      say(`Pulsar ${version} ready at ${urls(state).serviceUrl} in ${timings.startToReadyMs} ms (total ${timings.totalMs} ms)`);
      return toHandle(state, { reused: false, timings, dir, timeoutMs, say });
    } catch (error) {
      const tail = tailFile(logFile, 40);
      if (state?.pid) await teardown(state, dir);
      else removeDir(dataDir);
      error.message += tail ? `\n--- broker log, last 40 lines ---\n${tail}` : '';
      throw error;
    }
  });
}

/** Stops the broker recorded in the state file (only ever one txkit itself started). */
export async function stopPulsar() {
  return withLock(lockDir(), async () => teardown(readJson(stateFile())));
}

/** The running txkit broker, or undefined. */
export async function pulsarStatus() {
  const { state, running } = await runningInstance();
  return running ? { ...urls(state), ...state } : undefined;
}

// ---------------------------------------------------------------------------
// CLI

function parseArgs(argv) {
  const options = {};
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = () => inline ?? argv[++i];
    if (flag === '--version') options.version = value();
    else if (flag === '--timeout') options.timeoutMs = Number(value());
    else throw new Error(`unknown option ${argv[i]}`);
  }
  if ('timeoutMs' in options && !(options.timeoutMs > 0)) {
    throw new Error('--timeout needs a positive number of milliseconds');
  }
  return options;
}

function printUrls(handle) {
  process.stdout.write(`PULSAR_SERVICE_URL=${handle.serviceUrl}\nPULSAR_WEB_SERVICE_URL=${handle.webServiceUrl}\n`);
}

async function main([command, ...rest]) {
  switch (command) {
    case 'start': {
      const pulsar = await startPulsar(parseArgs(rest));
      if (pulsar.reused) defaultLog(`reusing running Pulsar ${pulsar.version} (pid ${pulsar.pid})`);
      // Kept warm for later runs: test runs reuse it and leave it running; `stop` ends it.
      await markKept(lockDir(), stateFile());
      printUrls(pulsar);
      return 0;
    }
    case 'stop': {
      defaultLog((await stopPulsar()) ? 'stopped' : 'no txkit Pulsar broker was running');
      return 0;
    }
    case 'status': {
      const status = await pulsarStatus();
      if (!status) {
        defaultLog('not running');
        return 1;
      }
      defaultLog(`Pulsar ${status.version} pid ${status.pid}, data ${status.dataDir}, state ${stateFile()}`);
      printUrls(status);
      return 0;
    }
    default:
      process.stderr.write('usage: node scripts/services/pulsar.mjs start [--version X.Y.Z] [--timeout ms] | stop | status\n');
      return 2;
  }
}

const invokedDirectly = process.argv[1] && fs.realpathSync(process.argv[1]) === fs.realpathSync(new URL(import.meta.url));
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error) => {
      defaultLog(error.message);
      process.exit(1);
    },
  );
}
