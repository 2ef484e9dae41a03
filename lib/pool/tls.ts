// TLS modes, named as libpq names them, mapped to the options Node's tls module takes.
import { readFileSync } from 'node:fs'
import type { ConnectionOptions } from 'node:tls'
import { InvalidOptionsError } from '../errors'

export const SSL_MODES = ['disable', 'require', 'verify-full'] as const
/**
 * How connections use TLS: `disable`, `require` (encrypted, the server not verified) or `verify-
 * full` (encrypted, its certificate and name checked).
 *
 * @example
 * const pools = new TenantPools({ ssl: 'verify-full' satisfies SslMode, sslCaPath: '/var/runtime/ca-cert.pem' })
 */
export type SslMode = (typeof SSL_MODES)[number]

/**
 * - `disable`: plain TCP.
 * - `require`: encrypted, the server's certificate is not checked (protects against sniffing only).
 * - `verify-full`: encrypted, the certificate must chain to a trusted CA and name the host. Without
 *   `caPath`, Node's CAs plus NODE_EXTRA_CA_CERTS are trusted. On Lambda, set
 *   NODE_EXTRA_CA_CERTS=/var/runtime/ca-cert.pem (serverless.yml does): that bundle includes the RDS
 *   CAs, and since Node.js 20 the runtime no longer loads it unless asked.
 *
 * @example
 * const client = new pg.Client({ connectionString, ssl: sslFor('verify-full', '/var/runtime/ca-cert.pem') })
 */
export function sslFor(mode: SslMode, caPath?: string): false | ConnectionOptions {
  if (mode === 'disable') return false
  if (mode === 'require') return { rejectUnauthorized: false }
  if (!caPath) return { rejectUnauthorized: true }
  try {
    return { rejectUnauthorized: true, ca: readFileSync(caPath, 'utf8') }
  } catch (err) {
    throw new InvalidOptionsError(`Cannot read the CA bundle at sslCaPath ${caPath}`, { cause: err })
  }
}

/** True unless TLS is certainly off. */
export const usesTls = (ssl: unknown): boolean => ssl !== undefined && ssl !== false && ssl !== 'disable'
