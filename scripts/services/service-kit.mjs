// Shared helpers for the scripts that run real JVM services (Kafka, Pulsar, ...)
// for txkit's tests. Plain Node ESM with no npm dependencies so the scripts work
// before `npm install` and from CI steps that only have Node, Java and Maven.

import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const LOOPBACK = '127.0.0.1';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Prefixed progress logger on stderr, so stdout stays machine-readable for CLIs. */
export function makeLogger(prefix) {
  return (message) => process.stderr.write(`[${prefix}] ${message}\n`);
}

/**
 * Persistent cache (Maven repository, resolved classpaths). Kept separate from ~/.m2
 * so CI can cache one directory and a wipe of it is a clean slate.
 */
export function cacheDir() {
  const dir = process.env.TXKIT_CACHE_DIR || path.join(os.homedir(), '.cache', 'txkit');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Small per-user directory for state/pid/lock files. It lives in the temp dir rather
 * than the cache because a reboot kills the processes it describes, and the temp dir
 * is wiped at reboot too. TXKIT_STATE_DIR allows isolated sets of services.
 */
export function stateDir() {
  const user = typeof process.getuid === 'function' ? process.getuid() : os.userInfo().username;
  const dir = process.env.TXKIT_STATE_DIR || path.join(os.tmpdir(), `txkit-services-${user}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** Fresh, uniquely named data directory for one service instance. */
export function makeTempDataDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `txkit-${prefix}-`));
}

export function removeDir(dir) {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * Free loopback TCP ports. All listeners are held open until every port is known, so
 * one call never hands out the same port twice.
 */
export async function findFreePorts(count = 1, { exclude = [] } = {}) {
  // `exclude`: ports the caller already chose and has not bound yet (a broker port behind a proxy); the OS may hand
  // them out again, and a broker given the same port twice fails to bind one of them.
  const skip = new Set(exclude);
  const servers = [];
  const ports = [];
  try {
    // Bounded: each excluded port can come back at most once, as it stays bound here until the end.
    for (let i = 0; ports.length < count && i < count + skip.size; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, LOOPBACK, resolve);
      });
      const { port } = server.address();
      if (!skip.has(port)) ports.push(port);
    }
    if (ports.length < count) throw new Error(`could not find ${count} free loopback port(s) outside ${[...skip].join(', ')}`);
    return ports;
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(() => resolve()))));
  }
}

export async function findFreePort() {
  const [port] = await findFreePorts(1);
  return port;
}

/**
 * Polls `check` until it returns a truthy value (which is returned) or the timeout
 * passes. A throwing check counts as "not yet", and its last error is reported on
 * timeout because that is usually the most useful hint. `abort` lets the caller stop
 * early, e.g. when the process being waited for has died.
 */
export async function waitFor(check, { timeoutMs = 60_000, intervalMs = 250, description = 'condition', abort } = {}) {
  if (!(timeoutMs >= 0)) throw new Error(`waitFor: invalid timeoutMs ${timeoutMs}`);
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    const reason = abort ? await abort() : undefined;
    if (reason) throw new Error(`gave up waiting for ${description}: ${reason}`);
    if (Date.now() >= deadline) {
      const detail = lastError ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}${detail}`);
    }
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

/** Last `lines` lines of a (possibly large) log file; empty string if it does not exist. */
export function tailFile(file, lines = 40) {
  let fd;
  try {
    fd = fs.openSync(file, 'r');
    const { size } = fs.fstatSync(fd);
    const length = Math.min(size, 256 * 1024);
    const buffer = Buffer.alloc(length);
    fs.readSync(fd, buffer, 0, length, size - length);
    return buffer.toString('utf8').replace(/\r?\n$/, '').split(/\r?\n/).slice(-lines).join('\n');
  } catch {
    return '';
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Write-then-rename so a concurrent reader never sees a half-written file. */
export function writeFileAtomic(file, content) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content);
  fs.renameSync(tmp, file);
}

// ---------------------------------------------------------------------------
// Tool discovery

// Maven is a .cmd script on Windows, which Node can only spawn through a shell.
const MVN = process.platform === 'win32' ? 'mvn.cmd' : 'mvn';
const needsShell = (command) => command === MVN && process.platform === 'win32';

function commandWorks(command, args) {
  const result = spawnSync(command, args, { stdio: 'ignore', shell: needsShell(command) });
  return !result.error && result.status === 0;
}

let checkedJava;

/** The `java` to use: $JAVA_HOME/bin/java when set (matching Maven's own choice), else PATH. */
export function javaCommand() {
  const java = process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
  // Probing costs a JVM start, so do it once per process.
  if (checkedJava === java) return java;
  if (!commandWorks(java, ['-version'])) {
    throw new Error(
      `Java was not found (tried '${java}'). Install a JDK 17+ (e.g. 'apt-get install openjdk-17-jre-headless') ` +
        'and put java on PATH or set JAVA_HOME.',
    );
  }
  checkedJava = java;
  return java;
}

export function mavenCommand() {
  const mvn = MVN;
  if (!commandWorks(mvn, ['-v'])) {
    throw new Error(
      "Maven was not found ('mvn' on PATH). Install Maven 3.6+ (e.g. 'apt-get install maven'); it is needed " +
        'once to download the service jars from Maven Central into the txkit cache.',
    );
  }
  return mvn;
}

// ---------------------------------------------------------------------------
// Processes

export function isAlive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/**
 * Whether `pid` is still the process we started. Pids get reused, so on Linux we
 * also require a marker (e.g. the data dir) in its command line before signalling
 * it; elsewhere liveness is the best available signal.
 */
export function isOwnProcess(pid, marker) {
  if (!isAlive(pid)) return false;
  if (!marker) return true;
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
  } catch {
    return process.platform !== 'linux';
  }
}

/**
 * Starts a JVM that outlives this Node process (so a CLI `start` can return), with
 * stdout/stderr appended to `logFile` and its pid written to `pidFile`.
 */
export function spawnDetachedJava({ classpath, mainClass, args = [], jvmArgs = [], logFile, pidFile, cwd, env }) {
  const java = javaCommand();
  const out = fs.openSync(logFile, 'a');
  try {
    const child = spawn(java, [...jvmArgs, '-cp', classpath, mainClass, ...args], {
      cwd,
      env: { ...process.env, ...env },
      detached: true,
      stdio: ['ignore', out, out],
    });
    child.unref();
    if (!child.pid) throw new Error(`failed to start ${java} ${mainClass}`);
    if (pidFile) writeFileAtomic(pidFile, String(child.pid));
    return child.pid;
  } finally {
    fs.closeSync(out);
  }
}

/** Runs a short-lived Java tool to completion; rejects with its output on failure. */
export function runJava({ classpath, mainClass, args = [], jvmArgs = [], cwd, env, timeoutMs = 120_000 }) {
  const java = javaCommand();
  return runCommand(java, [...jvmArgs, '-cp', classpath, mainClass, ...args], { cwd, env, timeoutMs, label: mainClass });
}

/** Runs a command to completion (killed after `timeoutMs`); resolves with its output, rejects with its last lines. `env` adds to this process's. */
export function runCommand(command, args, { cwd, env, timeoutMs, label = command }) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      shell: needsShell(command),
    });
    let output = '';
    const collect = (chunk) => {
      output = (output + chunk.toString()).slice(-64 * 1024);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve(output);
      const tail = output.trim().split('\n').slice(-40).join('\n');
      reject(new Error(`${label} failed (${signal ? `killed by ${signal}` : `exit code ${code}`}):\n${tail}`));
    });
  });
}

/**
 * Stops a process: SIGTERM for a clean shutdown, SIGKILL if it has not exited after
 * `graceMs`. Returns true if a process was stopped.
 */
export async function stopProcess(pid, { marker, graceMs = 20_000 } = {}) {
  if (!isOwnProcess(pid, marker)) return false;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return false;
  }
  try {
    await waitFor(() => !isAlive(pid), { timeoutMs: graceMs, intervalMs: 100, description: `pid ${pid} to exit` });
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // It exited between the check and the kill.
    }
    await waitFor(() => !isAlive(pid), { timeoutMs: 10_000, intervalMs: 100, description: `pid ${pid} to die` });
  }
  return true;
}

/** stopProcess for a pid recorded in a file; the file is removed either way. */
export async function stopByPidFile(pidFile, options) {
  let pid;
  try {
    pid = Number.parseInt(fs.readFileSync(pidFile, 'utf8').trim(), 10);
  } catch {
    return false;
  }
  try {
    return await stopProcess(pid, options);
  } finally {
    fs.rmSync(pidFile, { force: true });
  }
}

/**
 * Cross-process mutex (mkdir is atomic), so parallel test workers or CLI calls do not
 * start two services or run Maven twice into the same files. A lock left behind by a
 * dead process is taken over.
 */
export async function withLock(lockDir, fn, { timeoutMs = 300_000 } = {}) {
  const ownerFile = path.join(lockDir, 'owner');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      fs.mkdirSync(lockDir);
      fs.writeFileSync(ownerFile, String(process.pid));
      break;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
    }
    if (isStaleLock(lockDir, ownerFile)) {
      fs.rmSync(lockDir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for lock ${lockDir} (held by pid ${readOwner(ownerFile) || '?'})`);
    }
    await sleep(200);
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lockDir, { recursive: true, force: true });
  }
}

function isStaleLock(lockDir, ownerFile) {
  const owner = Number.parseInt(readOwner(ownerFile), 10);
  if (Number.isInteger(owner)) return !isAlive(owner);
  // No owner yet is normally a holder between mkdir and write; only an old one is abandoned.
  try {
    return Date.now() - fs.statSync(lockDir).mtimeMs > 30_000;
  } catch {
    return false;
  }
}

function readOwner(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------------------
// Maven

const DEPENDENCY_PLUGIN_VERSION = '3.8.1';

const escapeXml = (value) => value.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

function pomFor(coords) {
  const dependencies = coords
    .map((coord) => {
      const [groupId, artifactId, version, classifier] = coord.split(':');
      if (!groupId || !artifactId || !version) throw new Error(`bad Maven coordinate '${coord}' (want group:artifact:version)`);
      const extra = classifier ? `<classifier>${escapeXml(classifier)}</classifier>` : '';
      return `    <dependency><groupId>${escapeXml(groupId)}</groupId><artifactId>${escapeXml(artifactId)}</artifactId><version>${escapeXml(version)}</version>${extra}</dependency>`;
    })
    .join('\n');
  // The plugin version is pinned so resolution does not depend on the Maven install's default.
  return `<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>txkit.services</groupId>
  <artifactId>classpath</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
${dependencies}
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>${DEPENDENCY_PLUGIN_VERSION}</version>
      </plugin>
    </plugins>
  </build>
</project>
`;
}

function readCachedClasspath(file) {
  const jars = readJson(file);
  if (!Array.isArray(jars) || jars.length === 0) return undefined;
  // A partially wiped cache must trigger a re-resolve instead of a ClassNotFoundException later.
  return jars.every((jar) => fs.existsSync(jar)) ? jars.join(path.delimiter) : undefined;
}

/**
 * Resolves Maven coordinates ('group:artifact:version[:classifier]') plus their
 * runtime dependencies into a Java classpath string. Maven runs only the first time
 * for a given set of coordinates; later calls read the cached jar list. Jars live in
 * `<cacheDir>/m2`.
 */
export async function resolveMavenClasspath(coords, dir = cacheDir(), { log = () => {} } = {}) {
  const key = createHash('sha256').update(JSON.stringify(coords)).digest('hex').slice(0, 16);
  const workDir = path.join(dir, 'classpaths', key);
  const listFile = path.join(workDir, 'classpath.json');

  const cached = readCachedClasspath(listFile);
  if (cached) return cached;

  fs.mkdirSync(workDir, { recursive: true });
  return withLock(path.join(workDir, '.lock'), async () => {
    const resolved = readCachedClasspath(listFile);
    if (resolved) return resolved;

    const mvn = mavenCommand();
    fs.writeFileSync(path.join(workDir, 'pom.xml'), pomFor(coords));
    fs.writeFileSync(path.join(workDir, 'coords.txt'), `${coords.join('\n')}\n`);
    const outputFile = path.join(workDir, 'classpath.txt');
    fs.rmSync(outputFile, { force: true });
    log(`resolving ${coords[0]} (+${coords.length - 1}) from Maven into ${dir} ...`);
    await runCommand(
      mvn,
      [
        '-B',
        '-q',
        '-Dstyle.color=never',
        '-f',
        path.join(workDir, 'pom.xml'),
        `-Dmaven.repo.local=${path.join(dir, 'm2')}`,
        `org.apache.maven.plugins:maven-dependency-plugin:${DEPENDENCY_PLUGIN_VERSION}:build-classpath`,
        `-Dmdep.outputFile=${outputFile}`,
        '-Dmdep.includeScope=runtime',
        `-Dmdep.pathSeparator=${path.delimiter}`,
      ],
      { cwd: workDir, timeoutMs: 15 * 60_000, label: 'mvn dependency:build-classpath' },
    );
    const jars = fs.readFileSync(outputFile, 'utf8').trim().split(path.delimiter).filter(Boolean);
    if (jars.length === 0) throw new Error(`Maven resolved an empty classpath for ${coords.join(', ')}`);
    writeFileAtomic(listFile, JSON.stringify(jars, null, 2));
    return jars.join(path.delimiter);
  });
}

/**
 * The users of a broker: one lease file per handle, named `<pid>-<random>`, in
 * `<lock>-leases`. A lease whose process is gone does not count (and is removed).
 */
const leaseDir = (lock) => `${lock}-leases`;

function takeLease(lock) {
  const dir = leaseDir(lock);
  fs.mkdirSync(dir, { recursive: true });
  for (const name of fs.readdirSync(dir)) if (!isAlive(Number(name.split('-')[0]))) fs.rmSync(path.join(dir, name), { force: true });
  const lease = `${process.pid}-${randomBytes(4).toString('hex')}`;
  fs.writeFileSync(path.join(dir, lease), '');
  return lease;
}

function otherLiveLeases(lock, lease) {
  const dir = leaseDir(lock);
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((name) => name !== lease && isAlive(Number(name.split('-')[0])));
}

/**
 * Marks the broker of a state file as kept warm (the `<service>.mjs start`
 * command), under its lock: no handle's stop() ends it, only `<service>.mjs stop`.
 */
export function markKept(lock, stateFile) {
  return withLock(lock, async () => {
    const state = readJson(stateFile);
    if (state === undefined || state.kept === true) return;
    writeFileAtomic(stateFile, JSON.stringify({ ...state, kept: true }, null, 2));
  });
}

/**
 * The lifecycle part of a broker handle, shared by the Kafka and Pulsar scripts.
 * Every handle, started or reused, holds a lease on the broker. stop() drops it,
 * and the last user of a broker that test runs started stops the broker: a run
 * that reused the broker of another run keeps it while it runs, whichever ends
 * first. A broker kept warm by `<service>.mjs start` (`kept` in its state) is
 * never stopped by a handle. Only the starter's handle kills or restarts it
 * (private brokers of fault tests). `handle.pid` follows restarts.
 */
export function lifecycle(handle, { name, state, stateFile, reused, lock, teardown, launch }) {
  const own = (what) => {
    if (reused) throw new Error(`${what}() is only for a ${name} broker this handle started, not a reused one`);
  };
  const lease = takeLease(lock);
  let stopped = false;
  return {
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await withLock(lock, async () => {
        fs.rmSync(path.join(leaseDir(lock), lease), { force: true });
        const current = readJson(stateFile);
        const kept = current?.pid === state.pid && current.kept === true;
        if (kept || otherLiveLeases(lock, lease).length > 0) return;
        await teardown(state);
      });
    },
    /** SIGKILL, as a crash: no clean shutdown, the data dir stays for restart(). */
    kill: async () => {
      own('kill');
      if (!isOwnProcess(state.pid, state.dataDir)) return;
      process.kill(state.pid, 'SIGKILL');
      await waitFor(() => !isOwnProcess(state.pid, state.dataDir), { timeoutMs: 10_000, intervalMs: 50, description: `pid ${state.pid} to die` });
    },
    /** Starts the broker again on the same data dir and ports (after kill()); resolves once it serves. */
    restart: async () => {
      own('restart');
      if (isOwnProcess(state.pid, state.dataDir)) throw new Error(`${name} pid ${state.pid} still runs: kill() it first`);
      await launch(state);
      handle.pid = state.pid;
    },
  };
}
