// Builds the pg client for a new connection of one pool: connection settings, fresh credentials,
// an application_name that tells our sessions apart, and the per-tenant session settings.
import { Client, type ClientConfig } from 'pg'
import { parseIntoClientConfig } from 'pg-connection-string'
import { CredentialsError } from './errors'
import type { TenantPoolsOptions } from './options'
import { quoteIdent } from './tenant-id'
import { sslFor } from './tls'
import type { CredentialsProvider, CredentialsRequest } from './types'

export interface FactorySettings {
  base: ClientConfig
  credentials: CredentialsProvider
  applicationNamePrefix: string
  connectTimeoutMs: number
  statementTimeoutMs: number
  idleSessionTimeoutMs: number
  proxySafe: boolean
}

/**
 * Connection settings without user and password. A connection string is parsed here because pg
 * lets its user and password override any given alongside, which would defeat rotation.
 */
export function baseConfig(options: TenantPoolsOptions): {
  base: ClientConfig
  user?: string
  password?: string
} {
  const parsed = options.connectionString ? parseIntoClientConfig(options.connectionString) : {}
  const { user, password, ...rest } = parsed
  const base: ClientConfig = { ...rest, keepAlive: true }
  if (options.host !== undefined) base.host = options.host
  if (options.port !== undefined) base.port = options.port
  if (options.database !== undefined) base.database = options.database
  if (typeof options.ssl === 'string') base.ssl = sslFor(options.ssl, options.sslCaPath)
  else if (options.ssl !== undefined) base.ssl = options.ssl
  return {
    base,
    user: options.user ?? user,
    password: options.password ?? (typeof password === 'string' ? password : undefined),
  }
}

// In the startup `options` string, spaces separate arguments unless escaped with a backslash.
const escapeOption = (value: string): string => value.replace(/\\/g, '\\\\').replace(/ /g, '\\ ')

/** `-c` settings sent at startup, so no SET is ever needed. Empty in proxy-safe mode. */
export function startupOptions(schema: string, s: FactorySettings): string | undefined {
  if (s.proxySafe) return undefined
  const settings = [`search_path=${quoteIdent(schema)}`]
  if (s.idleSessionTimeoutMs > 0) settings.push(`idle_session_timeout=${s.idleSessionTimeoutMs}`)
  if (s.statementTimeoutMs > 0) settings.push(`statement_timeout=${s.statementTimeoutMs}`)
  return settings.map((kv) => `-c ${escapeOption(kv)}`).join(' ')
}

export interface PoolIdentity {
  key: string
  tenantId: string | null
  app: string | null
  schema: string
}

/** Returns a function that fetches credentials and builds a (not yet connected) client. */
export function clientFactory(
  pool: PoolIdentity,
  s: FactorySettings,
): (forceRefresh: boolean) => Promise<Client> {
  const options = startupOptions(pool.schema, s)
  // PostgreSQL truncates application_name at 63 bytes.
  const applicationName = `${s.applicationNamePrefix}:${pool.key}`.slice(0, 63)
  return async (forceRefresh) => {
    const request: CredentialsRequest = {
      key: pool.key,
      tenantId: pool.tenantId,
      app: pool.app,
      forceRefresh,
    }
    let credentials: Awaited<ReturnType<CredentialsProvider>>
    try {
      credentials = await s.credentials(request)
    } catch (err) {
      throw new CredentialsError(`The credentials provider failed for pool ${pool.key}`, { cause: err })
    }
    const config: ClientConfig = {
      ...s.base,
      user: credentials.user,
      password: credentials.password,
      application_name: applicationName,
      connectionTimeoutMillis: s.connectTimeoutMs,
    }
    if (options) config.options = options
    return new Client(config)
  }
}
