export { injectFaults } from './inject-faults.js';
export type { FaultInjection, FaultSpec } from './inject-faults.js';
export { rejection, testTransactionContext } from './conformance.js';
export type { ConformanceCapabilities, ConformanceOptions, ConformanceSubject, TestApi } from './conformance.js';
