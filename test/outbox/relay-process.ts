// The txkit CLI as a child process, run from the sources (the crash tests kill it with SIGKILL).
import { main } from '../../src/cli/index.js';

process.exitCode = await main();
