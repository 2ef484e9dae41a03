// Credentials from AWS Secrets Manager: RDS-style secrets, cached, refreshed on rotation.
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import { isSecretMissing, readRdsSecret, type VersionStage } from '../aws/secrets'
import { InvalidOptionsError, SecretUnreadableError } from '../errors'
import type { Clock, Credentials, CredentialsProvider, CredentialsRequest } from '../types'
import { ExpiringCache } from './cache'
import { hiddenCredentials, sameCredentials } from './hidden'

const defaults = {
  maxAgeMs: 300_000,
}

/**
 * secretsManagerCredentials()'s options: the master's secret, each tenant's, and how long they are
 * cached.
 *
 * @example
 * const credentials = secretsManagerCredentials({ secretId: 'app/master', secretIdFor: (id) => `app/tenants/${id}` })
 */
export interface SecretsManagerCredentialsOptions {
  /** The secret of the master pool, and of every tenant when `secretIdFor` is not given. */
  secretId?: string
  /** A tenant's own secret (its own role), e.g. `(id) => \`app/tenants/${id}\``. */
  secretIdFor?: (tenantId: string) => string
  /**
   * A tenant whose own secret does not exist logs in with `secretId`'s credentials (a login for
   * tenant traffic), so that per-tenant roles can be introduced tenant by tenant. Only a tenant
   * without a role of its own: one that has a role (named as its schema) but whose secret is
   * missing is refused with a SecretUnreadableError, never given the wider login.
   */
  fallbackToSecretId?: boolean
  /** How long a secret is trusted before it is read again. */
  maxAgeMs?: number
  /** A client of your own; by default one is built from the environment (AWS_ENDPOINT_URL_SECRETS_MANAGER …). */
  client?: SecretsManagerClient
  clock?: Clock
}

/**
 * A credentials provider backed by Secrets Manager.
 *
 * On a forced refresh (the server refused the cached password with 28P01) it reads AWSCURRENT again;
 * if that still holds the refused password, a rotation is under way (the role already has the
 * AWSPENDING password, AWSCURRENT has not moved yet), so AWSPENDING is used.
 *
 * @example
 * const pools = new TenantPools({
 *   host, database: 'app', ssl: 'verify-full',
 *   credentials: secretsManagerCredentials({ secretId: 'app/master', secretIdFor: (id) => `app/tenants/${id}` }),
 * })
 */
export function secretsManagerCredentials(
  options: SecretsManagerCredentialsOptions,
): CredentialsProvider & { clear(): void } {
  const config = { ...defaults, ...options }
  if (!config.secretId && !config.secretIdFor) {
    throw new InvalidOptionsError('secretsManagerCredentials needs secretId, secretIdFor, or both')
  }
  const clock = config.clock ?? { now: () => Date.now() }
  const cache = new ExpiringCache<Credentials>(config.maxAgeMs, clock)

  const read = async (secretId: string, stage: VersionStage): Promise<Credentials> => {
    const { username, password } = await readRdsSecret(secretId, { stage, client: config.client })
    return hiddenCredentials(username, password)
  }

  // A tenant whose own secret does not exist uses `secretId`'s (fallbackToSecretId): `read` on the
  // secret that actually holds its credentials, whatever it is asked for. Fails closed: a tenant
  // with a role of its own, or one the registry cannot tell (no hasOwnRole), never falls back.
  const withFallback = async <T>(
    secretId: string,
    request: CredentialsRequest,
    read: (id: string) => Promise<T>,
  ): Promise<T> => {
    try {
      return await read(secretId)
    } catch (err) {
      if (
        !isSecretMissing(err) ||
        !config.fallbackToSecretId ||
        !config.secretId ||
        secretId === config.secretId
      )
        throw err
      if (!request.hasOwnRole || (await request.hasOwnRole())) {
        throw new SecretUnreadableError(
          secretId,
          'it does not exist, and the tenant has a role of its own (or it could not be told): it never logs in with another secret',
          { cause: err },
        )
      }
      return read(config.secretId)
    }
  }

  // The server refused `refused`. AWSCURRENT may hold newer credentials; if it still holds the refused
  // ones, a single-user rotation is between "set secret" and "finish secret": use AWSPENDING. For a
  // tenant that falls back to the master secret, that is the master secret's rotation.
  const readAfterRefusal = (
    secretId: string,
    request: CredentialsRequest,
    refused: Credentials,
  ): Promise<Credentials> =>
    withFallback(secretId, request, async (id) => {
      const current = await read(id, 'AWSCURRENT')
      if (!sameCredentials(current, refused)) return current
      try {
        return await read(id, 'AWSPENDING')
      } catch {
        // No rotation in flight (or no right to see one): the refusal has another cause, and the
        // retry with AWSCURRENT will show it as the 28P01 it is.
        return current
      }
    })

  const readCurrent = (secretId: string, request: CredentialsRequest): Promise<Credentials> =>
    withFallback(secretId, request, (id) => read(id, 'AWSCURRENT'))

  const secretFor = (request: CredentialsRequest): string => {
    const tenantId = request.tenantId
    if (tenantId && config.secretIdFor) return config.secretIdFor(tenantId)
    if (config.secretId) return config.secretId
    throw new InvalidOptionsError('secretsManagerCredentials has no secretId for the master pool')
  }

  // async: a request it cannot serve is a rejected promise, as every other failure, not a throw.
  const provider = async (request: CredentialsRequest): Promise<Credentials> => {
    const secretId = secretFor(request)
    const refused = request.refused
    if (refused)
      return cache.refresh(secretId, refused, sameCredentials, () =>
        readAfterRefusal(secretId, request, refused),
      )
    return cache.get(secretId, request.forceRefresh, () => readCurrent(secretId, request))
  }
  return Object.assign(provider, { clear: () => cache.clear() })
}
