/**
 * Runs a small Java program from test/support/java/ against official Java clients
 * from Maven Central, so a test can compare txkit with what those clients do.
 * The classpath is resolved once (cached by service-kit), the source is compiled
 * once per content hash into the txkit cache, and the class runs as a child JVM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir, javaCommand, resolveMavenClasspath, runJava } from '../../scripts/services/service-kit.mjs';

export const JAVA_SOURCES = fileURLToPath(new URL('./java/', import.meta.url));

export interface JavaWitness {
  /** Classpath with the Maven jars and the compiled class. */
  readonly classpath: string;
  readonly mainClass: string;
}

export interface JavaWitnessOptions {
  /** Maven coordinates 'group:artifact:version[:classifier]' of the libraries the program uses. */
  readonly coords: readonly string[];
  /** File name under `dir`, e.g. 'PulsarKeyRouting.java'; the class is its base name. */
  readonly source: string;
  /** Directory of the source. @default test/support/java/ */
  readonly dir?: string;
}

const prepared = new Map<string, Promise<JavaWitness>>();

/** Resolves the jars and compiles the source (both cached on disk across runs). */
export function prepareJavaWitness(options: JavaWitnessOptions): Promise<JavaWitness> {
  const key = JSON.stringify([options.coords, options.source, options.dir]);
  let witness = prepared.get(key);
  if (witness === undefined) {
    witness = compile(options);
    witness.catch(() => prepared.delete(key));
    prepared.set(key, witness);
  }
  return witness;
}

async function compile({ coords, source, dir = JAVA_SOURCES }: JavaWitnessOptions): Promise<JavaWitness> {
  const file = path.join(dir, source);
  const text = fs.readFileSync(file);
  const mainClass = path.basename(source, '.java');
  const jars = coords.length > 0 ? await resolveMavenClasspath(coords) : '';
  const hash = createHash('sha256').update(text).update(jars).digest('hex').slice(0, 16);
  const outDir = path.join(cacheDir(), 'java-witness', `${mainClass}-${hash}`);
  const marker = path.join(outDir, '.compiled');
  if (!fs.existsSync(marker)) {
    // Compile into a private directory and rename it into place, so parallel workers never see half a build.
    const tmpDir = `${outDir}.${process.pid}.tmp`;
    fs.rmSync(tmpDir, { recursive: true, force: true });
    fs.mkdirSync(tmpDir, { recursive: true });
    await runCommand('javac', ['-nowarn', '-encoding', 'UTF-8', '-d', tmpDir, ...(jars ? ['-cp', jars] : []), file]);
    fs.writeFileSync(path.join(tmpDir, '.compiled'), '');
    try {
      fs.renameSync(tmpDir, outDir);
    } catch {
      // Another worker got there first with the same build.
      fs.rmSync(tmpDir, { recursive: true, force: true });
    }
  }
  return { classpath: jars ? `${outDir}${path.delimiter}${jars}` : outDir, mainClass };
}

/** Runs the program to completion and returns its stdout and stderr together; rejects on a non-zero exit. */
export async function runJavaWitness(options: JavaWitnessOptions & { args?: readonly string[]; timeoutMs?: number }): Promise<string> {
  const { classpath, mainClass } = await prepareJavaWitness(options);
  return runJava({ classpath, mainClass, args: options.args ?? [], timeoutMs: options.timeoutMs ?? 120_000 });
}

/** Starts the program as a long-running child (stdout/stderr piped); the caller ends it with kill(). */
export async function spawnJavaWitness(options: JavaWitnessOptions & { args?: readonly string[] }): Promise<ChildProcess> {
  const { classpath, mainClass } = await prepareJavaWitness(options);
  return spawn(javaCommand(), ['-cp', classpath, mainClass, ...(options.args ?? [])], { stdio: ['pipe', 'pipe', 'pipe'] });
}

function runCommand(command: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-16 * 1024);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${command} failed (exit code ${code}):\n${output.trim()}`))));
  });
}
