import { createHmac } from 'node:crypto';

/** A JWT signed with HS256 (what Pulsar's AuthenticationProviderToken checks against `tokenSecretKey`). */
export function hs256Jwt(secret: Buffer, claims: Record<string, unknown>): string {
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${part({ alg: 'HS256' })}.${part(claims)}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}
