// Every environment variable the library reads, in one table, read by one typed reader. The registry's
// options (optionsFromEnv), the credentials and clusters behind them, and the middleware's header
// trust all come from here, so a variable read anywhere else is a defect (docs/configuration.md's
// table is checked against this one). PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD are read by pg itself.
import { secretsManagerCredentials } from '../credentials/secrets-manager'
import { InvalidOptionsError } from '../errors'
import type { CredentialsProvider } from '../types'
import * as z from '../zod'
import { PREWARM_MAX_TIMEOUT_MS, PREWARM_TIMEOUT_MS } from './defaults'
import {
  type ClusterOptions,
  clusterName,
  clusterSchema,
  type optionAliases,
  stripUndefined,
  type TenantPoolsOptions,
} from './options'

type Kind = 'string' | 'number' | 'boolean'

/** Option ← environment variable: each of these sets the option of its key. */
const optionVariables = {
  connectionString: ['DATABASE_URL', 'string'],
  ssl: ['TENANT_POOLS_SSL_MODE', 'string'],
  sslCaPath: ['TENANT_POOLS_SSL_CA_PATH', 'string'],
  masterSchema: ['TENANT_POOLS_MASTER_SCHEMA', 'string'],
  maxPerScope: ['TENANT_POOLS_MAX_PER_SCOPE', 'number'],
  budget: ['TENANT_POOLS_BUDGET', 'number'],
  maxScopes: ['TENANT_POOLS_MAX_SCOPES', 'number'],
  idleTimeoutMs: ['TENANT_POOLS_IDLE_TIMEOUT_MS', 'number'],
  scopeTtlMs: ['TENANT_POOLS_SCOPE_TTL_MS', 'number'],
  connectTimeoutMs: ['TENANT_POOLS_CONNECT_TIMEOUT_MS', 'number'],
  maxLifetimeMs: ['TENANT_POOLS_MAX_LIFETIME_MS', 'number'],
  maxSchemasPerConnection: ['TENANT_POOLS_MAX_SCHEMAS_PER_CONNECTION', 'number'],
  keepFullConnection: ['TENANT_POOLS_KEEP_FULL_CONNECTION', 'boolean'],
  statementTimeoutMs: ['TENANT_POOLS_STATEMENT_TIMEOUT_MS', 'number'],
  idleSessionTimeoutMs: ['TENANT_POOLS_IDLE_SESSION_TIMEOUT_MS', 'number'],
  applicationNamePrefix: ['TENANT_POOLS_APP_NAME_PREFIX', 'string'],
  proxySafe: ['TENANT_POOLS_PROXY_SAFE', 'boolean'],
  validateAfterIdleMs: ['TENANT_POOLS_VALIDATE_AFTER_IDLE_MS', 'number'],
  sweepIntervalMs: ['TENANT_POOLS_SWEEP_INTERVAL_MS', 'number'],
  leakDetectionMs: ['TENANT_POOLS_LEAK_DETECTION_MS', 'number'],
  statementTimeoutMarginMs: ['TENANT_POOLS_STATEMENT_TIMEOUT_MARGIN_MS', 'number'],
  validationTimeoutMs: ['TENANT_POOLS_VALIDATION_TIMEOUT_MS', 'number'],
  keepAliveInitialDelayMs: ['TENANT_POOLS_KEEPALIVE_INITIAL_DELAY_MS', 'number'],
  mainCluster: ['TENANT_POOLS_MAIN_CLUSTER', 'string'],
  readerRetryAfterMs: ['TENANT_POOLS_READER_RETRY_AFTER_MS', 'number'],
} as const satisfies Partial<Record<keyof TenantPoolsOptions, readonly [string, Kind]>>

/** Old variable names, kept for one minor version: each sets the option its new name sets. */
const aliasVariables = {
  maxPerPool: ['TENANT_POOLS_MAX_PER_POOL', 'number'],
  maxPools: ['TENANT_POOLS_MAX_POOLS', 'number'],
  poolTtlMs: ['TENANT_POOLS_POOL_TTL_MS', 'number'],
} as const satisfies Record<keyof typeof optionAliases, readonly [string, Kind]>

/** Variables that shape an option without being one, and the middleware's. */
const otherVariables = {
  TENANT_POOLS_SCHEMA_PREFIX: 'string',
  TENANT_POOLS_SECRET_ID: 'string',
  TENANT_POOLS_TENANT_SECRET_PATTERN: 'string',
  TENANT_POOLS_TENANT_SECRET_FALLBACK: 'boolean',
  TENANT_POOLS_CLUSTERS: 'string',
  TENANT_POOLS_TRUST_TENANT_HEADER: 'boolean',
  TENANT_POOLS_STAGE: 'string',
  TENANT_POOLS_PREWARM: 'boolean',
  TENANT_POOLS_PREWARM_TIMEOUT_MS: 'number',
  // Set by serverless-offline ('true'); any other value is not offline, as before it was read here.
  IS_OFFLINE: 'string',
  AWS_LAMBDA_FUNCTION_NAME: 'string',
} as const satisfies Record<string, Kind>

/**
 * Option → the environment variable that sets it.
 *
 * @example
 * environmentVariables.maxPerScope // 'TENANT_POOLS_MAX_PER_SCOPE'
 */
export const environmentVariables = optionVariables

/**
 * Every variable the library reads, with the kind of value it takes.
 *
 * @example
 * for (const [name, kind] of Object.entries(libraryVariables)) console.log(name, kind) // e.g. TENANT_POOLS_SCOPE_TTL_MS number
 */
export const libraryVariables: Readonly<Record<string, Kind>> = Object.freeze({
  ...Object.fromEntries(
    [...Object.values(optionVariables), ...Object.values(aliasVariables)].map(([name, kind]) => [name, kind]),
  ),
  ...otherVariables,
})

/**
 * The value of `name` (one of libraryVariables), typed by its kind; undefined when unset or empty.
 * A malformed value throws InvalidOptionsError naming the variable, never echoing the value.
 */
export function readVariable(env: NodeJS.ProcessEnv, name: string): string | number | boolean | undefined {
  const kind = libraryVariables[name]
  if (kind === undefined) throw new Error(`${name} is not a variable of the library's (lib/config/env.ts)`)
  const raw = env[name]
  if (raw === undefined || raw === '') return undefined
  if (kind === 'string') return raw
  if (kind === 'boolean') {
    if (raw !== 'true' && raw !== 'false') throw new InvalidOptionsError(`${name} must be true or false`)
    return raw === 'true'
  }
  const n = Number(raw)
  if (!Number.isInteger(n)) throw new InvalidOptionsError(`${name} must be an integer`)
  return n
}

const stringOf = (env: NodeJS.ProcessEnv, name: keyof typeof otherVariables) =>
  readVariable(env, name) as string | undefined
const flagOf = (env: NodeJS.ProcessEnv, name: keyof typeof otherVariables) =>
  readVariable(env, name) as boolean | undefined

/**
 * Reads the registry's options from the environment. A malformed value names its variable.
 *
 * @example
 * // TENANT_POOLS_MAX_PER_SCOPE=4, plus overrides of your own:
 * const pools = new TenantPools({ ...optionsFromEnv(), logger })
 */
export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): TenantPoolsOptions {
  const out: Record<string, unknown> = {}
  // Old names too: resolveOptions turns each into its new one, refusing one that disagrees with it.
  for (const [option, [name]] of [...Object.entries(aliasVariables), ...Object.entries(optionVariables)]) {
    const value = readVariable(env, name)
    if (value !== undefined) out[option] = value
  }
  const prefix = stringOf(env, 'TENANT_POOLS_SCHEMA_PREFIX')
  if (prefix) out.schemaFor = (tenantId: string) => `${prefix}${tenantId}`
  const credentials = credentialsFromEnv(env)
  if (credentials) out.credentials = credentials
  const clusters = stringOf(env, 'TENANT_POOLS_CLUSTERS')
  if (clusters !== undefined) out.clusters = clustersFromJson(clusters)
  return out as TenantPoolsOptions
}

// TENANT_POOLS_SECRET_ID, TENANT_POOLS_TENANT_SECRET_PATTERN (with {tenantId}) and its fallback.
function credentialsFromEnv(env: NodeJS.ProcessEnv): CredentialsProvider | undefined {
  const secretId = stringOf(env, 'TENANT_POOLS_SECRET_ID')
  const pattern = stringOf(env, 'TENANT_POOLS_TENANT_SECRET_PATTERN')
  if (pattern !== undefined && !pattern.includes('{tenantId}')) {
    throw new InvalidOptionsError('TENANT_POOLS_TENANT_SECRET_PATTERN must contain {tenantId}')
  }
  const fallbackToSecretId = flagOf(env, 'TENANT_POOLS_TENANT_SECRET_FALLBACK') ?? false
  if (!secretId && !pattern) return undefined
  return secretsManagerCredentials({
    secretId,
    secretIdFor: pattern ? (tenantId) => pattern.replaceAll('{tenantId}', tenantId) : undefined,
    fallbackToSecretId,
  })
}

/**
 * TENANT_POOLS_PREWARM (off by default): whether init opens a connection ahead of the first request,
 * and TENANT_POOLS_PREWARM_TIMEOUT_MS, its bound (1000 by default, 1 to 1000). Undefined when off.
 *
 * @example
 * const warm = prewarmFromEnv()
 * if (warm) void getTenantPools().prewarm(warm)
 */
export function prewarmFromEnv(env: NodeJS.ProcessEnv = process.env): { timeoutMs: number } | undefined {
  const on = flagOf(env, 'TENANT_POOLS_PREWARM') ?? false
  const given = readVariable(env, 'TENANT_POOLS_PREWARM_TIMEOUT_MS') as number | undefined
  if (given !== undefined && (given < 1 || given > PREWARM_MAX_TIMEOUT_MS)) {
    throw new InvalidOptionsError(
      `TENANT_POOLS_PREWARM_TIMEOUT_MS must be between 1 and ${PREWARM_MAX_TIMEOUT_MS}`,
    )
  }
  return on ? { timeoutMs: given ?? PREWARM_TIMEOUT_MS } : undefined
}

/**
 * Whether the middleware trusts a tenant header: TENANT_POOLS_TRUST_TENANT_HEADER when set, else
 * only under serverless-offline (IS_OFFLINE), where no authorizer runs.
 */
export const trustHeaderFromEnv = (env: NodeJS.ProcessEnv = process.env): boolean =>
  flagOf(env, 'TENANT_POOLS_TRUST_TENANT_HEADER') ?? stringOf(env, 'IS_OFFLINE') === 'true'

/** Where the middleware runs: in Lambda (not offline), and in which stage, for the header-trust check. */
export const runtimeFromEnv = (env: NodeJS.ProcessEnv = process.env) => ({
  inLambda: stringOf(env, 'AWS_LAMBDA_FUNCTION_NAME') !== undefined,
  offline: stringOf(env, 'IS_OFFLINE') === 'true',
  stage: stringOf(env, 'TENANT_POOLS_STAGE'),
})

/**
 * TENANT_POOLS_CLUSTERS: `{"<name>": {"connectionString": "…", "reader": "postgres://…", "secretId":
 * "…", "maxConnections": 10, "ssl": "require"}}`. A cluster's secretId gives it credentials of its
 * own; its reader is a connection string. The rest is checked by the clusters option's own schema.
 */
function clustersFromJson(raw: string): Record<string, ClusterOptions> {
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch {
    throw new InvalidOptionsError('TENANT_POOLS_CLUSTERS must be a JSON object of clusters by name')
  }
  // What the variable spells differently from the option: a reader's URL, a secret's id.
  const spelled = z.record(
    clusterName(),
    z.looseObject({
      reader: z.optional(z.string().check(z.minLength(1))),
      secretId: z.optional(z.string().check(z.minLength(1))),
    }),
  )
  const first = spelled.safeParse(parsed)
  if (!first.success) throw invalidClusters(first.error.issues[0])
  const out: Record<string, ClusterOptions> = {}
  for (const [name, { reader, secretId, ...rest }] of Object.entries(first.data)) {
    const cluster = stripUndefined({
      ...rest,
      reader: reader === undefined ? undefined : { connectionString: reader },
    }) as ClusterOptions
    const checked = clusterSchema().safeParse(cluster)
    if (!checked.success) throw invalidClusters(checked.error.issues[0], name)
    // Made after the check: the schema takes a provider function, not a secret's id.
    out[name] =
      secretId === undefined ? cluster : { ...cluster, credentials: secretsManagerCredentials({ secretId }) }
  }
  return out
}

const invalidClusters = (issue: { path: PropertyKey[]; message: string } | undefined, cluster?: string) =>
  new InvalidOptionsError(
    `TENANT_POOLS_CLUSTERS is invalid at "${[...(cluster ? [cluster] : []), ...(issue?.path ?? [])].join('.')}": ${issue?.message}`,
  )
