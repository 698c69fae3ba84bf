import { classifyKnown } from '../../core/index.js';
import type { Classification } from '../../core/index.js';
import { PulsarClientError } from '../../pulsar-client/errors.js';

export {
  PULSAR_SERVER_ERROR_NAMES,
  PulsarChecksumError,
  PulsarClosedError,
  PulsarConnectionError,
  PulsarProtocolError,
  PulsarServerError,
  PulsarTimeoutError,
  PulsarTransactionsDisabledError,
  PulsarUnsupportedError,
} from '../../pulsar-client/errors.js';
export type { PulsarServerErrorName } from '../../pulsar-client/errors.js';

/**
 * The Pulsar adapter's classification. The client's errors are transient when
 * `retriable` (a new transaction can succeed: see the server error table in the
 * client's errors) and fatal otherwise; the core's own errors keep the core's
 * judgement; anything else, from user code or unknown, is fatal.
 */
export function classifyPulsarError(err: unknown): Classification {
  if (err instanceof PulsarClientError) return err.retriable ? 'transient' : 'fatal';
  return classifyKnown(err) ?? 'fatal';
}
