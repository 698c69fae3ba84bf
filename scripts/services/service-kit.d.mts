// Types for the parts of service-kit.mjs that TypeScript tests use.
export function cacheDir(): string;
export function javaCommand(): string;
export function resolveMavenClasspath(coords: readonly string[], dir?: string, options?: { log?: (line: string) => void }): Promise<string>;
export function runJava(options: {
  classpath: string;
  mainClass: string;
  args?: readonly string[];
  jvmArgs?: readonly string[];
  cwd?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}): Promise<string>;
