/** The backend a context or transaction talks to; SQL contexts report their dialect. */
export type BackendName = 'postgres' | 'mysql' | 'sqlite' | 'mongodb' | 'kafka' | 'pulsar' | 'memory';
