// Builds the pg client for a new connection of one pool: connection settings, fresh credentials,
// an application_name that tells our sessions apart, and the per-tenant session settings.
import { createHash } from 'node:crypto'
import { Client, type ClientConfig } from 'pg'
import { parseIntoClientConfig } from 'pg-connection-string'
import { defaults } from '../config/defaults'
import type { TenantPoolsOptions } from '../config/options'
import { CredentialsError } from '../errors'
import type { Credentials, CredentialsProvider, CredentialsRequest, Scope } from '../types'
import type { ScopeUse } from './scope-use'
import { searchPathOf } from './session'
import { sslFor } from './tls'

export interface FactorySettings {
  base: ClientConfig
  credentials: CredentialsProvider
  applicationNamePrefix: string
  connectTimeoutMs: number
  statementTimeoutMs: number
  idleSessionTimeoutMs: number
  proxySafe: boolean
  /** Whether a role named `schema` exists (CredentialsRequest.hasOwnRole). */
  roleExists?: (schema: string) => Promise<boolean>
}

/**
 * Connection settings without user and password. A connection string is parsed here because pg
 * lets its user and password override any given alongside, which would defeat rotation.
 */
export function baseConfig(
  options: TenantPoolsOptions,
  keepAliveInitialDelayMs: number = defaults.keepAliveInitialDelayMs,
): {
  base: ClientConfig
  user?: string
  password?: string
} {
  const parsed = options.connectionString ? parseIntoClientConfig(options.connectionString) : {}
  const { user, password, ...rest } = parsed
  // A short keepalive delay: an idle connection to a vanished server is found while idle, as far as
  // the OS probe interval allows (Node sets only the initial delay).
  const base: ClientConfig = {
    ...rest,
    keepAlive: true,
    keepAliveInitialDelayMillis: keepAliveInitialDelayMs,
  }
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

// In the startup `options` string, any whitespace (the server splits on isspace(): space, tab,
// newline, vertical tab, form feed, carriage return) separates arguments unless escaped with a
// backslash, and a backslash escapes the character after it: both are escaped, or a schema name
// holding a tab and "-c" would smuggle a setting of its own in.
const escapeOption = (value: string): string => value.replace(/[\\ \t\n\v\f\r]/g, '\\$&')

/** `-c` settings sent at startup, so no SET is ever needed. Empty in proxy-safe mode. */
export function startupOptions(schema: string, s: FactorySettings, readOnly = false): string | undefined {
  if (s.proxySafe) return undefined
  const settings = [`search_path=${searchPathOf(schema)}`]
  if (readOnly) settings.push('default_transaction_read_only=on')
  if (s.idleSessionTimeoutMs > 0) settings.push(`idle_session_timeout=${s.idleSessionTimeoutMs}`)
  if (s.statementTimeoutMs > 0) settings.push(`statement_timeout=${s.statementTimeoutMs}`)
  return settings.map((kv) => `-c ${escapeOption(kv)}`).join(' ')
}

/**
 * `<prefix>:<key>`. PostgreSQL truncates application_name at 63 bytes, and two long `tenant:app` keys
 * could then look alike, so a key that does not fit keeps its head and ends in a hash of the whole.
 */
export function applicationNameFor(prefix: string, key: string): string {
  const name = `${prefix}:${key}`
  if (name.length <= 63) return name
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 10)
  return `${name.slice(0, 63 - hash.length - 1)}~${hash}`
}

const joinOptions = (own: string | undefined, ours: string | undefined): string | undefined =>
  own && ours ? `${own} ${ours}` : own || ours

/** Returns a function that fetches a scope's credentials and builds a (not yet connected) client for it. */
export function connector(
  s: FactorySettings,
): (use: ScopeUse, refused?: Credentials) => Promise<{ client: Client; credentials: Credentials }> {
  return async (use, refused) => {
    const { scope } = use
    let credentials: Credentials
    try {
      credentials = await s.credentials(credentialsRequest(scope, s, refused))
    } catch (err) {
      throw new CredentialsError(`The credentials provider failed for pool ${scope.key}`, { cause: err })
    }
    const config: ClientConfig = {
      ...s.base,
      user: credentials.user,
      password: credentials.password,
      application_name: use.binding.applicationName,
      connectionTimeoutMillis: s.connectTimeoutMs,
    }
    // A replica refuses writes by itself; a read-only scope on the writer is made to.
    const ours = startupOptions(scope.schema, s, scope.readOnly && !scope.onReader)
    // The caller's own startup options (the connection string's, else PGOPTIONS, as libpq takes
    // them) are kept, and come first: where both set a parameter, the last one sent wins.
    config.options = joinOptions(s.base.options ?? process.env.PGOPTIONS, ours)
    return { client: new Client(config), credentials }
  }
}

/** What a scope's connection asks its credentials provider. */
export const credentialsRequest = (
  scope: Scope,
  s: Pick<FactorySettings, 'roleExists'>,
  refused?: Credentials,
): CredentialsRequest => {
  const { roleExists } = s
  return {
    key: scope.key,
    tenantId: scope.tenantId,
    app: scope.app,
    cluster: scope.cluster,
    forceRefresh: refused !== undefined,
    refused,
    hasOwnRole: scope.tenantId !== null && roleExists ? () => roleExists(scope.schema) : undefined,
  }
}

/** `host:port/database` of the connection settings: with the user, a login's key. */
export function endpointOf(base: ClientConfig): string {
  return `${base.host ?? process.env.PGHOST ?? 'localhost'}:${base.port ?? process.env.PGPORT ?? 5432}/${base.database ?? process.env.PGDATABASE ?? ''}`
}
