import { describe, expect, it } from 'vitest';
import { runJavaWitness, spawnJavaWitness } from './java-witness.js';

describe('java witness', () => {
  it('compiles and runs a class from test/support/java with arguments', async () => {
    const out = await runJavaWitness({ coords: [], source: 'WitnessEcho.java', args: ['a', 'b c'] });
    expect(out).toContain('echo:a,b c');
    expect(out).toContain(`hash:${'txkit'.split('').reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) | 0, 0)}`);
  });

  it('spawns a class as a child process', async () => {
    const child = await spawnJavaWitness({ coords: [], source: 'WitnessEcho.java', args: ['x'] });
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
    expect(out).toContain('echo:x');
  });
});
