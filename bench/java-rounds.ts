// A Java program from bench/java/ (compiled against official clients from Maven Central)
// driven one stdin command at a time, so its rounds interleave with txkit's in the same
// run: it prints "ready" once set up, then one result line per command, and exits on "quit".
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { spawnJavaWitness } from '../test/support/java-witness.js';

const SOURCES = fileURLToPath(new URL('./java/', import.meta.url));

export interface JavaRounds {
  /** Sends one command line and resolves with the program's answer line. */
  command(line: string): Promise<string>;
  /** Sends "quit" and waits for the JVM to exit (SIGKILL after 30 s). */
  close(): Promise<void>;
}

/** Starts `source` (a file in bench/java/) with `args` and waits for its "ready" line. */
export async function startJavaRounds(options: { coords: readonly string[]; source: string; args: readonly string[] }): Promise<JavaRounds> {
  const child = await spawnJavaWitness({ coords: options.coords, source: options.source, dir: SOURCES, args: options.args });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4_000)));
  const waiting: { resolve(line: string): void; reject(err: Error): void }[] = [];
  const buffered: string[] = [];
  let ended: Error | undefined;
  readline.createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    const w = waiting.shift();
    if (w !== undefined) w.resolve(line);
    else buffered.push(line);
  });
  child.once('exit', (code, signal) => {
    ended = new Error(`bench/java/${options.source} exited (${signal ?? `code ${String(code)}`}):\n${stderr}`);
    for (const w of waiting.splice(0)) w.reject(ended);
  });
  const next = (): Promise<string> => {
    const line = buffered.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (ended !== undefined) return Promise.reject(ended);
    return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  };
  const first = await next();
  if (first !== 'ready') throw new Error(`bench/java/${options.source} said '${first}' instead of ready:\n${stderr}`);
  return {
    command: (line) => {
      child.stdin?.write(`${line}\n`);
      return next();
    },
    close: async () => {
      if (ended !== undefined) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.stdin?.end('quit\n');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
