#!/usr/bin/env node
// Real single-node Apache Kafka (KRaft, combined broker+controller) for txkit's tests,
// built from Maven Central jars and run with the machine's Java - no Docker, no
// tarball download. Usable as a module (startKafka/stopKafka) and as a CLI:
//
//   node scripts/services/kafka.mjs start [--version 3.9.2] [--timeout 120000]
//   node scripts/services/kafka.mjs status
//   node scripts/services/kafka.mjs stop
//
// `start` prints `KAFKA_BROKERS=127.0.0.1:<port>` on stdout (progress goes to stderr)
// and reuses a broker it started earlier if that one still answers.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
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
  runJava,
  spawnDetachedJava,
  stateDir,
  stopProcess,
  tailFile,
  waitFor,
  withLock,
  writeFileAtomic,
} from './service-kit.mjs';

export const DEFAULT_KAFKA_VERSION = process.env.TXKIT_KAFKA_VERSION || '3.9.2';

const defaultLog = makeLogger('txkit:kafka');
// `dir` is the state directory: TXKIT_STATE_DIR's (shared) one unless a caller isolates its own broker.
const stateFile = (dir = stateDir()) => path.join(dir, 'kafka.json');
const pidFile = (dir = stateDir()) => path.join(dir, 'kafka.pid');
const lockDir = (dir = stateDir()) => path.join(dir, 'kafka.lock');

// ---------------------------------------------------------------------------
// Version-specific bits

function parseVersion(version) {
  const match = /^(\d+)\.(\d+)\.(\d+)/.exec(String(version));
  if (!match) throw new Error(`invalid Kafka version '${version}' (expected e.g. 3.9.2 or 4.1.1)`);
  const [major, minor] = [Number(match[1]), Number(match[2])];
  // Combined-mode KRaft with a static voter set is production-ready from 3.3 on.
  if (major < 3 || (major === 3 && minor < 3)) throw new Error(`Kafka ${version} is not supported: KRaft needs 3.3 or newer`);
  return { major, minor };
}

/**
 * Maven coordinates mirroring the distribution's libs/ folder. kafka_2.13's runtime
 * dependencies already pull in kafka-server, -metadata, -raft, -storage and the group,
 * transaction and share coordinators; what the pom leaves out is the slf4j binding the
 * tarball ships, without which the broker would log nothing. 3.x logs through
 * reload4j (log4j 1 API, which 3.x's Log4jController also calls directly), 4.x through
 * log4j2.
 */
function flavorFor(version) {
  const { major } = parseVersion(version);
  if (major >= 4) {
    return {
      coords: [
        `org.apache.kafka:kafka_2.13:${version}`,
        'org.apache.logging.log4j:log4j-slf4j-impl:2.24.3',
        'org.apache.logging.log4j:log4j-core:2.24.3',
      ],
      logConfigName: 'log4j2.properties',
      logConfig: (level) =>
        [
          'status = warn',
          'appender.out.type = Console',
          'appender.out.name = OUT',
          'appender.out.layout.type = PatternLayout',
          'appender.out.layout.pattern = [%d] %p %m (%c)%n',
          `rootLogger.level = ${level}`,
          'rootLogger.appenderRef.out.ref = OUT',
          '',
        ].join('\n'),
      logJvmArg: (file) => `-Dlog4j2.configurationFile=${pathToFileURL(file).href}`,
      // Share groups (KIP-932) have their own internal topic whose defaults assume 3 brokers.
      extraProperties: {
        'share.coordinator.state.topic.replication.factor': 1,
        'share.coordinator.state.topic.min.isr': 1,
      },
    };
  }
  return {
    coords: [
      `org.apache.kafka:kafka_2.13:${version}`,
      'org.slf4j:slf4j-reload4j:1.7.36',
      'ch.qos.reload4j:reload4j:1.2.25',
    ],
    logConfigName: 'log4j.properties',
    logConfig: (level) =>
      [
        `log4j.rootLogger=${level.toUpperCase()}, out`,
        'log4j.appender.out=org.apache.log4j.ConsoleAppender',
        'log4j.appender.out.layout=org.apache.log4j.PatternLayout',
        'log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n',
        '',
      ].join('\n'),
    logJvmArg: (file) => `-Dlog4j.configuration=${pathToFileURL(file).href}`,
    extraProperties: {},
  };
}

/** Kafka's Uuid text form: 16 random bytes, base64url. Kafka avoids a leading '-' so CLIs don't read it as a flag. */
function randomClusterId() {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/**
 * With `advertisedPort` the client listener is advertised on that port instead of its
 * own (a proxy in front of the broker listens there, so clients reach the broker only
 * through it after bootstrap), and the broker talks to itself (transaction markers,
 * replication) on a separate INTERNAL listener that bypasses the proxy.
 */
function listenerProperties({ port, controllerPort, advertisedPort, internalPort, internalAdvertisedPort = internalPort, extraListeners = [] }) {
  if (advertisedPort === undefined) {
    // Extra client listeners (TLS, SASL) beside PLAINTEXT, which readiness checks and the broker's own traffic keep using.
    const extra = extraListeners.map((l) => `${l.name}://${LOOPBACK}:${l.port}`);
    return {
      listeners: [`PLAINTEXT://${LOOPBACK}:${port}`, ...extra, `CONTROLLER://${LOOPBACK}:${controllerPort}`].join(','),
      'advertised.listeners': [`PLAINTEXT://${LOOPBACK}:${port}`, ...extra].join(','),
      'inter.broker.listener.name': 'PLAINTEXT',
      'listener.security.protocol.map': ['PLAINTEXT:PLAINTEXT', ...extraListeners.map((l) => `${l.name}:${l.protocol}`), 'CONTROLLER:PLAINTEXT'].join(','),
    };
  }
  if (extraListeners.length > 0) throw new Error('extraListeners cannot be combined with advertisedPort');
  return {
    listeners: `PLAINTEXT://${LOOPBACK}:${port},INTERNAL://${LOOPBACK}:${internalPort},CONTROLLER://${LOOPBACK}:${controllerPort}`,
    'advertised.listeners': `PLAINTEXT://${LOOPBACK}:${advertisedPort},INTERNAL://${LOOPBACK}:${internalAdvertisedPort}`,
    'inter.broker.listener.name': 'INTERNAL',
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT',
  };
}

function serverProperties({ dataDir, port, controllerPort, advertisedPort, internalPort, internalAdvertisedPort, extraListeners, extraProperties, properties = {} }) {
  const props = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    // A static voter set works unchanged on 3.x and 4.x and needs no --standalone at format time.
    'controller.quorum.voters': `1@${LOOPBACK}:${controllerPort}`,
    'controller.listener.names': 'CONTROLLER',
    ...listenerProperties({ port, controllerPort, advertisedPort, internalPort, internalAdvertisedPort, extraListeners }),
    'log.dirs': path.join(dataDir, 'logs'),
    // Single node: every replication factor and ISR requirement must be 1.
    'num.partitions': 1,
    'default.replication.factor': 1,
    'min.insync.replicas': 1,
    'offsets.topic.replication.factor': 1,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    // One partition each instead of 50: creating the internal topics is then near-instant,
    // which matters for the first consumer group / transaction of a test run.
    'offsets.topic.num.partitions': 1,
    'transaction.state.log.num.partitions': 1,
    'group.initial.rebalance.delay.ms': 0,
    'auto.create.topics.enable': true,
    // Sized for a 2-core CI box and short-lived test data rather than throughput.
    'num.network.threads': 2,
    'num.io.threads': 2,
    'num.recovery.threads.per.data.dir': 1,
    'log.segment.bytes': 16 * 1024 * 1024,
    'offsets.topic.segment.bytes': 16 * 1024 * 1024,
    'transaction.state.log.segment.bytes': 16 * 1024 * 1024,
    'log.index.size.max.bytes': 1024 * 1024,
    'log.retention.hours': 1,
    // The cleaner's dedupe buffer lives on the heap (128 MB by default); keep it small for -Xmx512m.
    'log.cleaner.dedupe.buffer.size': 16 * 1024 * 1024,
    ...extraProperties,
    // The caller's own overrides come last.
    ...properties,
  };
  // Backslashes are escapes in .properties files (matters for Windows paths).
  return `${Object.entries(props)
    .map(([key, value]) => `${key}=${String(value).replaceAll('\\', '\\\\')}`)
    .join('\n')}\n`;
}

const BROKER_JVM_ARGS = [
  '-Xms256m',
  '-Xmx512m',
  '-XX:+UseG1GC',
  '-XX:MaxGCPauseMillis=20',
  '-XX:+ExitOnOutOfMemoryError',
  '-Djava.awt.headless=true',
];

// The format tool is a short-lived JVM: skipping the optimizing JIT makes it start faster.
const TOOL_JVM_ARGS = ['-Xmx256m', '-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', '-Djava.awt.headless=true'];

// ---------------------------------------------------------------------------
// Kafka wire protocol: just enough to ask a broker whether it is really serving.

const API_METADATA = 3;
const API_VERSIONS = 18;

function encodeRequest(apiKey, apiVersion, correlationId, body = Buffer.alloc(0)) {
  const clientId = Buffer.from('txkit-probe');
  // Request header v1 (non-flexible): api_key, api_version, correlation_id, client_id.
  const header = Buffer.alloc(10);
  header.writeInt16BE(apiKey, 0);
  header.writeInt16BE(apiVersion, 2);
  header.writeInt32BE(correlationId, 4);
  header.writeInt16BE(clientId.length, 8);
  const size = Buffer.alloc(4);
  size.writeInt32BE(header.length + clientId.length + body.length, 0);
  return Buffer.concat([size, header, clientId, body]);
}

class Reader {
  constructor(buffer) {
    this.buffer = buffer;
    this.offset = 0;
  }
  int8() {
    return this.buffer.readInt8((this.offset += 1) - 1);
  }
  int16() {
    return this.buffer.readInt16BE((this.offset += 2) - 2);
  }
  int32() {
    return this.buffer.readInt32BE((this.offset += 4) - 4);
  }
  nullableString() {
    const length = this.int16();
    if (length < 0) return null;
    const value = this.buffer.toString('utf8', this.offset, this.offset + length);
    this.offset += length;
    return value;
  }
}

/** One TCP connection exchanging size-prefixed request/response frames in order. */
function openKafkaConnection(host, port, timeoutMs) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let pending = Buffer.alloc(0);
    let waiter;
    const fail = (error) => {
      socket.destroy();
      if (waiter) waiter.reject(error);
      else reject(error);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`)));
    socket.on('error', fail);
    socket.on('close', () => waiter?.reject(new Error(`${host}:${port} closed the connection`)));
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      if (!waiter || pending.length < 4) return;
      const size = pending.readInt32BE(0);
      if (pending.length < 4 + size) return;
      const frame = pending.subarray(4, 4 + size);
      pending = pending.subarray(4 + size);
      const { resolve: done } = waiter;
      waiter = undefined;
      done(frame);
    });
    socket.once('connect', () =>
      resolve({
        request(frame) {
          return new Promise((done, rejectRequest) => {
            waiter = { resolve: done, reject: rejectRequest };
            socket.write(frame);
          });
        },
        close: () => socket.destroy(),
      }),
    );
  });
}

/**
 * Asks the broker for its API versions (v0, which every broker must answer) and then for
 * cluster metadata in a version it supports. Kafka 4.0 dropped Metadata v0-v3, so the
 * version is negotiated instead of hard-coded; v1-v8 share a simple non-flexible layout.
 */
export async function probeKafka(host, port, { timeoutMs = 5_000 } = {}) {
  const connection = await openKafkaConnection(host, port, timeoutMs);
  try {
    const versionsReader = new Reader(await connection.request(encodeRequest(API_VERSIONS, 0, 1)));
    if (versionsReader.int32() !== 1) throw new Error('ApiVersions: correlation id mismatch');
    const errorCode = versionsReader.int16();
    if (errorCode !== 0) throw new Error(`ApiVersions: error code ${errorCode}`);
    const apiVersions = new Map();
    for (let i = versionsReader.int32(); i > 0; i--) {
      const key = versionsReader.int16();
      apiVersions.set(key, { min: versionsReader.int16(), max: versionsReader.int16() });
    }
    const range = apiVersions.get(API_METADATA);
    if (!range) throw new Error('broker does not offer the Metadata API');
    const version = Math.min(range.max, 8);
    if (version < Math.max(range.min, 1)) throw new Error(`no usable Metadata version in ${range.min}..${range.max}`);

    // Body: empty topic list (brokers only), then the booleans later versions added, all false.
    const body = Buffer.alloc(4 + (version >= 4 ? 1 : 0) + (version >= 8 ? 2 : 0));
    const metadata = new Reader(await connection.request(encodeRequest(API_METADATA, version, 2, body)));
    if (metadata.int32() !== 2) throw new Error('Metadata: correlation id mismatch');
    if (version >= 3) metadata.int32(); // throttle_time_ms
    const brokers = [];
    for (let i = metadata.int32(); i > 0; i--) {
      const nodeId = metadata.int32();
      const brokerHost = metadata.nullableString();
      const brokerPort = metadata.int32();
      metadata.nullableString(); // rack
      brokers.push({ nodeId, host: brokerHost, port: brokerPort });
    }
    return { apiVersions, metadataVersion: version, brokers };
  } finally {
    connection.close();
  }
}

/** Serving, listing itself at the port clients are told to use (the proxy's, with advertisedPort), in a cluster of `size` brokers. */
async function isServing(port, advertisedPort = port, size = 1) {
  const { brokers } = await probeKafka(LOOPBACK, port);
  return brokers.length === size && brokers.some((b) => b.port === advertisedPort);
}

// ---------------------------------------------------------------------------
// Lifecycle

/** The broker recorded in the state file, if its process is still the one we started and it answers. */
async function runningInstance(dir) {
  const state = readJson(stateFile(dir));
  if (!state || !isOwnProcess(state.pid, state.dataDir)) return { state, running: false };
  try {
    return { state, running: await isServing(state.port, state.advertisedPort) };
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

/** Runs the broker JVM on an existing (formatted) data dir and waits until it serves. */
async function launch(state, { dir, timeoutMs, say }) {
  const flavor = flavorFor(state.version);
  const classpath = await resolveMavenClasspath(flavor.coords, cacheDir(), { log: say });
  const pid = spawnDetachedJava({
    classpath,
    mainClass: 'kafka.Kafka',
    args: [path.join(state.dataDir, 'server.properties')],
    jvmArgs: [...BROKER_JVM_ARGS, flavor.logJvmArg(path.join(state.dataDir, flavor.logConfigName))],
    logFile: state.logFile,
    pidFile: pidFile(dir),
    cwd: state.dataDir,
  });
  state.pid = pid;
  writeFileAtomic(stateFile(dir), JSON.stringify(state, null, 2));
  say(`Kafka ${state.version} starting (pid ${pid}, port ${state.port}, log ${state.logFile})`);
  const size = state.clusterSize ?? 1;
  await waitFor(() => isServing(state.port, state.advertisedPort, size), {
    timeoutMs,
    intervalMs: 250,
    description: `Kafka ${state.version} on ${LOOPBACK}:${state.port} to answer ApiVersions and Metadata with ${size} broker${size === 1 ? '' : 's'}`,
    abort: () => (isOwnProcess(pid, state.dataDir) ? undefined : 'the broker process exited'),
  });
}

function toHandle(state, { reused, timings, dir, timeoutMs, say }) {
  const handle = {
    brokers: `${LOOPBACK}:${state.advertisedPort ?? state.port}`,
    version: state.version,
    pid: state.pid,
    port: state.port,
    advertisedPort: state.advertisedPort,
    internalPort: state.internalPort,
    logFile: state.logFile,
    dataDir: state.dataDir,
    reused,
    timings,
  };
  return Object.assign(handle, lifecycle(handle, { name: 'Kafka', state, stateFile: stateFile(dir), reused, lock: lockDir(dir), teardown: (st) => teardown(st, dir), launch: (st) => launch(st, { dir, timeoutMs, say }) }));
}

/**
 * Starts (or reuses) the txkit test broker. Resolves once the broker answers real
 * ApiVersions + Metadata requests listing itself.
 *
 * `stateDir` keeps this broker's state apart from the shared one (tests that kill or
 * proxy a broker of their own); `advertisedPort` advertises the client listener on
 * another port (a proxy's) and adds an INTERNAL listener for the broker's own
 * traffic (transaction markers), advertised on `internalAdvertisedPort` when given (a
 * second proxy's, to hold the markers back); `extraListeners` adds client listeners of other security protocols
 * (e.g. `{ name: 'SASL_PLAINTEXT', port, protocol: 'SASL_PLAINTEXT' }`, configured
 * through `properties`); `properties` override server.properties entries.
 *
 * @param {{ version?: string, timeoutMs?: number, log?: ((message: string) => void) | false,
 *   stateDir?: string, advertisedPort?: number, internalAdvertisedPort?: number, extraListeners?: { name: string, port: number, protocol: string }[],
 *   properties?: Record<string, string | number | boolean> }} [options]
 */
export async function startKafka({
  version = DEFAULT_KAFKA_VERSION,
  timeoutMs = 120_000,
  log = defaultLog,
  stateDir: dir = stateDir(),
  advertisedPort,
  internalAdvertisedPort,
  extraListeners = [],
  properties = {},
} = {}) {
  const say = log || (() => {});
  const flavor = flavorFor(version);
  javaCommand();
  const t0 = Date.now();
  fs.mkdirSync(dir, { recursive: true });

  return withLock(lockDir(dir), async () => {
    const { state: previous, running } = await runningInstance(dir);
    if (running) {
      if (previous.version !== version || previous.advertisedPort !== advertisedPort) {
        throw new Error(
          `a Kafka ${previous.version} broker started by txkit is already running at ${LOOPBACK}:${previous.port} ` +
            `(state in ${dir}); run 'node scripts/services/kafka.mjs stop' before starting ${version} with other listeners`,
        );
      }
      return toHandle(previous, { reused: true, timings: { totalMs: Date.now() - t0 }, dir, timeoutMs, say });
    }
    await teardown(previous, dir);

    const classpath = await resolveMavenClasspath(flavor.coords, cacheDir(), { log: say });
    const t1 = Date.now();

    const dataDir = makeTempDataDir('kafka');
    const logFile = path.join(dataDir, 'kafka.log');
    const propertiesFile = path.join(dataDir, 'server.properties');
    const logConfigFile = path.join(dataDir, flavor.logConfigName);
    let state;
    try {
      // The proxies' ports are bound by then, but exclude them anyway: a broker given one twice fails to bind it.
      const [port, controllerPort, internalPort] = await findFreePorts(3, {
        exclude: [advertisedPort, internalAdvertisedPort].filter((p) => p !== undefined),
      });
      if (internalAdvertisedPort !== undefined && advertisedPort === undefined) throw new Error('internalAdvertisedPort needs advertisedPort');
      const listeners = advertisedPort === undefined ? {} : { advertisedPort, internalPort, ...(internalAdvertisedPort === undefined ? {} : { internalAdvertisedPort }) };
      fs.writeFileSync(
        propertiesFile,
        serverProperties({ dataDir, port, controllerPort, ...listeners, extraListeners, extraProperties: flavor.extraProperties, properties }),
      );
      fs.writeFileSync(logConfigFile, flavor.logConfig('info'));
      const toolLogConfig = path.join(dataDir, `tool-${flavor.logConfigName}`);
      fs.writeFileSync(toolLogConfig, flavor.logConfig('warn'));

      await runJava({
        classpath,
        mainClass: 'kafka.tools.StorageTool',
        args: ['format', '--cluster-id', randomClusterId(), '--config', propertiesFile],
        jvmArgs: [...TOOL_JVM_ARGS, flavor.logJvmArg(toolLogConfig)],
        cwd: dataDir,
      });
      const t2 = Date.now();

      state = { version, pid: 0, port, controllerPort, ...listeners, dataDir, logFile, startedAt: new Date().toISOString() };
      await launch(state, { dir, timeoutMs, say });
      const t3 = Date.now();
      const timings = { resolveMs: t1 - t0, formatMs: t2 - t1, startToReadyMs: t3 - t2, totalMs: t3 - t0 };
      say(`Kafka ${version} ready at ${LOOPBACK}:${port} in ${timings.startToReadyMs} ms (total ${timings.totalMs} ms)`);
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

/**
 * Starts a private KRaft cluster of `size` nodes on loopback (each a combined
 * broker and controller, all of them voters), with replication factor
 * `size` and `min.insync.replicas` `size - 1` for data and for the internal
 * offsets and transaction-state topics (3 partitions each, so their leaders
 * spread over the nodes). Its state lives under `stateDir`, one directory per
 * node, apart from the shared broker. Resolves once every node lists the
 * whole cluster. The handle's `nodes` can each be SIGKILLed and restarted on
 * their data dir; `stop()` stops them all.
 *
 * @param {{ stateDir: string, size?: number, version?: string, timeoutMs?: number,
 *   log?: ((message: string) => void) | false, properties?: Record<string, string | number | boolean> }} options
 */
export async function startKafkaCluster({ stateDir: dir, size = 3, version = DEFAULT_KAFKA_VERSION, timeoutMs = 180_000, log = defaultLog, properties = {} }) {
  if (typeof dir !== 'string' || dir === '') throw new Error('startKafkaCluster needs a stateDir of its own');
  if (!Number.isInteger(size) || size < 1 || size > 9) throw new Error(`startKafkaCluster size must be 1..9, got ${size}`);
  const say = log || (() => {});
  const flavor = flavorFor(version);
  javaCommand();
  const t0 = Date.now();
  const classpath = await resolveMavenClasspath(flavor.coords, cacheDir(), { log: say });
  const ports = await findFreePorts(2 * size);
  const ids = Array.from({ length: size }, (_, i) => i + 1);
  const voters = ids.map((id, i) => `${id}@${LOOPBACK}:${ports[size + i]}`).join(',');
  const clusterId = randomClusterId();
  const replication = {
    'default.replication.factor': size,
    'min.insync.replicas': Math.max(1, size - 1),
    'offsets.topic.replication.factor': size,
    'offsets.topic.num.partitions': size,
    'transaction.state.log.replication.factor': size,
    'transaction.state.log.min.isr': Math.max(1, size - 1),
    'transaction.state.log.num.partitions': size,
    'share.coordinator.state.topic.replication.factor': size,
    'share.coordinator.state.topic.min.isr': Math.max(1, size - 1),
    // A restarted node catches up and leads again its preferred partitions soon.
    'leader.imbalance.check.interval.seconds': 5,
  };
  const nodes = [];
  try {
    for (const [i, id] of ids.entries()) {
      const nodeDir = path.join(dir, `node-${id}`);
      fs.mkdirSync(nodeDir, { recursive: true });
      const dataDir = makeTempDataDir(`kafka-node${id}`);
      const propertiesFile = path.join(dataDir, 'server.properties');
      const toolLogConfig = path.join(dataDir, `tool-${flavor.logConfigName}`);
      fs.writeFileSync(
        propertiesFile,
        serverProperties({
          dataDir,
          port: ports[i],
          controllerPort: ports[size + i],
          extraProperties: flavor.extraProperties,
          properties: { 'node.id': id, 'controller.quorum.voters': voters, ...replication, ...properties },
        }),
      );
      fs.writeFileSync(path.join(dataDir, flavor.logConfigName), flavor.logConfig('info'));
      fs.writeFileSync(toolLogConfig, flavor.logConfig('warn'));
      const state = { version, pid: 0, port: ports[i], controllerPort: ports[size + i], clusterSize: size, nodeId: id, dataDir, logFile: path.join(dataDir, 'kafka.log'), startedAt: new Date().toISOString() };
      nodes.push({ id, dir: nodeDir, state });
      await runJava({
        classpath,
        mainClass: 'kafka.tools.StorageTool',
        args: ['format', '--cluster-id', clusterId, '--config', propertiesFile],
        jvmArgs: [...TOOL_JVM_ARGS, flavor.logJvmArg(toolLogConfig)],
        cwd: dataDir,
      });
    }
    // Together: a node is ready only once the quorum has formed and every broker registered.
    await Promise.all(nodes.map((n) => launch(n.state, { dir: n.dir, timeoutMs, say })));
  } catch (error) {
    const tails = nodes.map((n) => `--- node ${n.id} log, last 20 lines ---\n${tailFile(n.state.logFile, 20)}`).join('\n');
    await Promise.all(nodes.map((n) => teardown(n.state.pid ? n.state : undefined, n.dir).then(() => removeDir(n.state.dataDir))));
    error.message += `\n${tails}`;
    throw error;
  }
  say(`Kafka ${version} cluster of ${size} ready at ${nodes.map((n) => `${LOOPBACK}:${n.state.port}`).join(',')} in ${Date.now() - t0} ms`);
  const handle = {
    brokers: nodes.map((n) => `${LOOPBACK}:${n.state.port}`).join(','),
    version,
    nodes: nodes.map((n) => ({
      nodeId: n.id,
      port: n.state.port,
      get pid() {
        return n.state.pid;
      },
      logFile: n.state.logFile,
      /** SIGKILL, as a crash: the data dir stays for restart(). */
      kill: async () => {
        if (!isOwnProcess(n.state.pid, n.state.dataDir)) return;
        process.kill(n.state.pid, 'SIGKILL');
        await waitFor(() => !isOwnProcess(n.state.pid, n.state.dataDir), { timeoutMs: 10_000, intervalMs: 50, description: `Kafka node ${n.id} (pid ${n.state.pid}) to die` });
      },
      /** Starts the node again on its data dir and ports; resolves once it serves and lists the whole cluster. */
      restart: async () => {
        if (isOwnProcess(n.state.pid, n.state.dataDir)) throw new Error(`Kafka node ${n.id} (pid ${n.state.pid}) still runs: kill() it first`);
        await launch(n.state, { dir: n.dir, timeoutMs, say });
      },
    })),
    stop: async () => {
      await Promise.all(nodes.map((n) => teardown(n.state, n.dir)));
    },
  };
  return handle;
}

/** Keeps the running broker warm: test runs reuse it and leave it running; only stopKafka() ends it. */
export async function keepKafka({ stateDir: dir = stateDir() } = {}) {
  await markKept(lockDir(dir), stateFile(dir));
}

/** Stops the broker recorded in the state file (only ever one txkit itself started), kept warm or not. */
export async function stopKafka({ stateDir: dir = stateDir() } = {}) {
  return withLock(lockDir(dir), async () => teardown(readJson(stateFile(dir)), dir));
}

/** The running txkit broker, or undefined. */
export async function kafkaStatus() {
  const { state, running } = await runningInstance();
  return running ? { brokers: `${LOOPBACK}:${state.port}`, ...state } : undefined;
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

async function main([command, ...rest]) {
  switch (command) {
    case 'start': {
      const kafka = await startKafka(parseArgs(rest));
      if (kafka.reused) defaultLog(`reusing running Kafka ${kafka.version} (pid ${kafka.pid})`);
      // Kept warm for later runs: test runs reuse it and leave it running; `stop` ends it.
      await keepKafka();
      process.stdout.write(`KAFKA_BROKERS=${kafka.brokers}\n`);
      return 0;
    }
    case 'stop': {
      defaultLog((await stopKafka()) ? 'stopped' : 'no txkit Kafka broker was running');
      return 0;
    }
    case 'status': {
      const status = await kafkaStatus();
      if (!status) {
        defaultLog('not running');
        return 1;
      }
      defaultLog(`Kafka ${status.version} pid ${status.pid}, data ${status.dataDir}, state ${stateFile()}`);
      process.stdout.write(`KAFKA_BROKERS=${status.brokers}\n`);
      return 0;
    }
    default:
      process.stderr.write('usage: node scripts/services/kafka.mjs start [--version X.Y.Z] [--timeout ms] | stop | status\n');
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
