// Credentials from AWS Secrets Manager: RDS-style secrets, cached, refreshed on rotation.
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import { secretsManagerClient, secretsManagerSdk } from '../aws/secrets-manager-client'
import { InvalidOptionsError, SecretUnreadableError } from '../errors'
import type { Clock, Credentials, CredentialsProvider, CredentialsRequest } from '../types'
import * as z from '../zod'
import { ExpiringCache } from './cache'
import { hiddenCredentials, sameCredentials } from './hidden'

const defaults = {
  maxAgeMs: 300_000,
}

export interface SecretsManagerCredentialsOptions {
  /** The secret of the master pool, and of every tenant when `secretIdFor` is not given. */
  secretId?: string
  /** A tenant's own secret (its own role), e.g. `(id) => \`app/tenants/${id}\``. */
  secretIdFor?: (tenantId: string) => string
  /**
   * A tenant whose own secret does not exist (yet) logs in with `secretId`'s credentials, so that
   * per-tenant roles can be introduced tenant by tenant.
   */
  fallbackToSecretId?: boolean
  /** How long a secret is trusted before it is read again. */
  maxAgeMs?: number
  /** A client of your own; by default one is built from the environment (AWS_ENDPOINT_URL_SECRETS_MANAGER …). */
  client?: SecretsManagerClient
  clock?: Clock
}

/** The fields of an RDS secret (as rotation lambdas write them). Only username and password are needed. */
const rdsSecret = z.object({
  username: z.string().check(z.minLength(1)),
  password: z.string().check(z.minLength(1)),
  host: z.optional(z.string()),
  port: z.optional(z.union([z.number(), z.string()])),
  dbname: z.optional(z.string()),
  engine: z.optional(z.string()),
})

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

  const read = async (secretId: string, stage: 'AWSCURRENT' | 'AWSPENDING'): Promise<Credentials> => {
    let text: string | undefined
    try {
      const { GetSecretValueCommand } = await secretsManagerSdk()
      const client = config.client ?? (await secretsManagerClient())
      const out = await client.send(new GetSecretValueCommand({ SecretId: secretId, VersionStage: stage }))
      text = out.SecretString
    } catch (err) {
      const name = (err as { name?: string }).name ?? 'an error'
      throw new SecretUnreadableError(secretId, `GetSecretValue (${stage}) failed with ${name}`, {
        cause: err,
      })
    }
    if (text === undefined)
      throw new SecretUnreadableError(secretId, 'it has no SecretString (binary secrets are not supported)')
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      // No cause: the parser's message quotes the secret's text.
      throw new SecretUnreadableError(secretId, 'its SecretString is not JSON')
    }
    const parsed = rdsSecret.safeParse(json)
    if (!parsed.success) {
      const fields = [...new Set(parsed.error.issues.map((i) => i.path.join('.') || '(root)'))].join(', ')
      throw new SecretUnreadableError(secretId, `missing or invalid field(s): ${fields}`)
    }
    return hiddenCredentials(parsed.data.username, parsed.data.password)
  }

  // The server refused `refused`. AWSCURRENT may hold newer credentials; if it still holds the refused
  // ones, a single-user rotation is between "set secret" and "finish secret": use AWSPENDING.
  const readAfterRefusal = async (secretId: string, refused: Credentials): Promise<Credentials> => {
    const current = await read(secretId, 'AWSCURRENT')
    if (!sameCredentials(current, refused)) return current
    try {
      return await read(secretId, 'AWSPENDING')
    } catch {
      // No rotation in flight (or no right to see one): the refusal has another cause, and the retry
      // with AWSCURRENT will show it as the 28P01 it is.
      return current
    }
  }

  const readCurrent = async (secretId: string): Promise<Credentials> => {
    try {
      return await read(secretId, 'AWSCURRENT')
    } catch (err) {
      const missing = (err as { cause?: { name?: string } }).cause?.name === 'ResourceNotFoundException'
      if (!missing || !config.fallbackToSecretId || !config.secretId || secretId === config.secretId)
        throw err
      return read(config.secretId, 'AWSCURRENT')
    }
  }

  const secretFor = (request: CredentialsRequest | undefined): string => {
    const tenantId = request?.tenantId
    if (tenantId && config.secretIdFor) return config.secretIdFor(tenantId)
    if (config.secretId) return config.secretId
    throw new InvalidOptionsError('secretsManagerCredentials has no secretId for the master pool')
  }

  const provider = (request?: CredentialsRequest): Promise<Credentials> => {
    const secretId = secretFor(request)
    const refused = request?.refused
    if (refused)
      return cache.refresh(secretId, refused, sameCredentials, () => readAfterRefusal(secretId, refused))
    return cache.get(secretId, request?.forceRefresh ?? false, () => readCurrent(secretId))
  }
  return Object.assign(provider, { clear: () => cache.clear() })
}
