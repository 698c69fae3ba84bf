/**
 * Test certificates made with openssl: a CA, a server certificate it signs
 * (for the names given, 127.0.0.1 by default), a client certificate it signs,
 * and an unrelated CA whose trust must not be enough. Keys are unencrypted
 * PKCS#8 PEM, as Kafka's PEM key store and Node both read them.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestCertificates {
  /** The CA that signs the server and client certificates. */
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A CA that signed none of them. */
  otherCa: string;
}

/** Writes the certificates into `dir` and returns their paths. `serverNames` become the server certificate's subjectAltName. */
export function makeCertificates(dir: string, serverNames = 'IP:127.0.0.1'): TestCertificates {
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ca = (name: string): void => {
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.crt`);
  };
  const signed = (name: string, ext: string): void => {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.raw.key`, '-out', `${name}.csr`);
    writeFileSync(join(dir, `${name}.ext`), ext);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.crt`);
    ssl('pkcs8', '-topk8', '-nocrypt', '-in', `${name}.raw.key`, '-out', `${name}.key`);
  };
  ca('ca');
  ca('other-ca');
  signed('server', `subjectAltName=${serverNames}\nextendedKeyUsage=serverAuth\n`);
  signed('client', 'extendedKeyUsage=clientAuth\n');
  const at = (f: string): string => join(dir, f);
  return {
    ca: at('ca.crt'),
    serverCert: at('server.crt'),
    serverKey: at('server.key'),
    clientCert: at('client.crt'),
    clientKey: at('client.key'),
    otherCa: at('other-ca.crt'),
  };
}
