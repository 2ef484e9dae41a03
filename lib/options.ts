// Options of a TenantPools registry: defaults, validation, and the environment variables behind them.
import type { ConnectionOptions } from 'node:tls'
import { secretsManagerCredentials } from './credentials/secrets-manager'
import { InvalidOptionsError } from './errors'
import { SSL_MODES, type SslMode } from './pool/tls'
import { type Clock, type CredentialsProvider, type Log, systemClock } from './types'
import * as z from './zod'

/** Defaults tuned for Lambda: few connections per environment, closed quickly. */
export const defaults = {
  schemaPrefix: 'tenant_',
  masterSchema: 'public',
  maxPerPool: 2,
  budget: 4,
  maxPools: 32,
  idleTimeoutMs: 10_000,
  poolTtlMs: 60_000,
  connectTimeoutMs: 3_000,
  maxLifetimeMs: 300_000,
  // Below API Gateway's 30 s integration timeout, so a runaway statement ends before the caller gives up.
  statementTimeoutMs: 25_000,
  // The server ends sessions idle this long: a frozen environment's connections die at the server.
  idleSessionTimeoutMs: 30_000,
  applicationNamePrefix: 'tenant-pools',
  proxySafe: false,
  // HikariCP checks connections idle longer than 500 ms; a Lambda thaw is always longer than that.
  validateAfterIdleMs: 1_000,
  sweepIntervalMs: 1_000,
  // Off by default, as in HikariCP: capturing the acquiring stack costs on every checkout.
  leakDetectionMs: 0,
  // A statement with no answer this long after the server's own statement_timeout should have ended
  // it is given up on client-side: the server is gone (failover, partition) or cannot cancel.
  statementTimeoutMarginMs: 1_000,
  // A liveness ping answers in a round trip; a third of the connect timeout is already generous.
  validationTimeoutMs: 1_000,
  // TCP keepalive on idle connections, so a vanished peer is found while idle where the OS allows.
  keepAliveInitialDelayMs: 5_000,
  // The cluster the top-level connection settings describe, and every scope's unless told otherwise.
  mainCluster: 'main',
  // A reader that could not be reached is not tried again for this long: its calls go to the writer.
  readerRetryAfterMs: 5_000,
} as const

/** Where a cluster's replica (or Aurora reader endpoint) answers: its database and login are the writer's. */
export interface ReaderOptions {
  /** Only its host and port are used. */
  connectionString?: string
  host?: string
  port?: number
}

/** Where a database answers and how to log in: the top level's settings, and each cluster's. */
export interface ConnectionSettings {
  /** postgres://… ; host/port/database/user/password also fall back to PGHOST, PGPORT … as in pg. */
  connectionString?: string
  host?: string
  port?: number
  database?: string
  /** `disable`, `require`, `verify-full` (with `sslCaPath`), or pg's own `ssl` value. */
  ssl?: SslMode | boolean | ConnectionOptions
  /** CA bundle for `verify-full`. */
  sslCaPath?: string
  /** Used by the default credentials provider. */
  user?: string
  password?: string
  /** Called for every new connection; rotated credentials apply without rebuilding pools. */
  credentials?: CredentialsProvider
}

/**
 * One database cluster. Settings not given are the top-level ones (ssl, credentials …); the main
 * cluster's endpoint is the top-level one, any other gives its own.
 */
export interface ClusterOptions extends ConnectionSettings {
  reader?: ReaderOptions
  /** This environment's connections to the cluster, within the budget. Default: the budget. */
  maxConnections?: number
}

export interface TenantPoolsOptions extends ConnectionSettings {
  /** Schema of a tenant; default `tenant_<id>`. */
  schemaFor?: (tenantId: string) => string
  /** Schema of the master/catalog pool. */
  masterSchema?: string
  maxPerPool?: number
  /** Connections across all pools of this environment. */
  budget?: number
  maxPools?: number
  idleTimeoutMs?: number
  /** A pool unused this long is ended as a whole. */
  poolTtlMs?: number
  connectTimeoutMs?: number
  maxLifetimeMs?: number
  /** 0 disables. Not sent in proxy-safe mode: set it on the role instead. */
  statementTimeoutMs?: number
  /** 0 disables. Not sent in proxy-safe mode: set it on the role instead. */
  idleSessionTimeoutMs?: number
  applicationNamePrefix?: string
  /** Send no startup `options` and no SET (RDS Proxy rejects the one and pins on the other). */
  proxySafe?: boolean
  validateAfterIdleMs?: number
  sweepIntervalMs?: number
  /** Warn (with the acquiring stack) when a connection is held longer than this; 0 disables. */
  leakDetectionMs?: number
  /** A `query()` with no answer after statementTimeoutMs plus this is given up on (StatementTimeoutError). */
  statementTimeoutMarginMs?: number
  /** How long a liveness ping may take before the connection is replaced. */
  validationTimeoutMs?: number
  /** Initial delay of TCP keepalive probes on every connection. */
  keepAliveInitialDelayMs?: number
  /** Name of the cluster the top-level settings describe. */
  mainCluster?: string
  /** Clusters by name; the main one's entry, if any, adds to the top-level settings (a reader, a cap). */
  clusters?: Record<string, ClusterOptions>
  /** How long a reader that could not be reached is skipped (its calls go to the writer). */
  readerRetryAfterMs?: number
  logger?: Log
  clock?: Clock
}

const ms = (min = 0) => z.optional(z.int().check(z.gte(min), z.lte(2_147_483_647)))
const positive = z.optional(z.int().check(z.gte(1), z.lte(10_000)))
const text = (max = 10_000) => z.optional(z.string().check(z.minLength(1), z.maxLength(max)))
const fn = <T>(what: string) =>
  z.optional(z.custom<T>((v) => typeof v === 'function', { message: `expected ${what} to be a function` }))

// Built on first use, as the schema below: a function's init builds none of them.
const clusterName = z.builtOnFirstUse(() => z.string().check(z.regex(/^[a-z][a-z0-9_-]{0,31}$/)))
const port = () => z.optional(z.int().check(z.gte(1), z.lte(65_535)))

/** ConnectionSettings, checked: the top level's and each cluster's. */
const connectionShape = () => ({
  connectionString: text(),
  host: text(),
  port: port(),
  database: text(),
  ssl: z.optional(z.union([z.enum(SSL_MODES), z.boolean(), z.looseObject({})])),
  sslCaPath: text(),
  user: text(),
  password: z.optional(z.string()),
  credentials: fn<CredentialsProvider>('credentials'),
})

const clusterSchema = () =>
  z.strictObject({
    ...connectionShape(),
    reader: z.optional(z.strictObject({ connectionString: text(), host: text(), port: port() })),
    maxConnections: positive,
  })

const schema = z.builtOnFirstUse(() =>
  z.strictObject({
    ...connectionShape(),
    schemaFor: fn<(tenantId: string) => string>('schemaFor'),
    masterSchema: text(63),
    maxPerPool: positive,
    budget: positive,
    maxPools: positive,
    idleTimeoutMs: ms(),
    poolTtlMs: ms(),
    connectTimeoutMs: ms(1),
    maxLifetimeMs: ms(1),
    statementTimeoutMs: ms(),
    idleSessionTimeoutMs: ms(),
    applicationNamePrefix: z.optional(z.string().check(z.maxLength(30), z.regex(/^[A-Za-z0-9_.-]*$/))),
    proxySafe: z.optional(z.boolean()),
    validateAfterIdleMs: ms(),
    sweepIntervalMs: ms(1),
    leakDetectionMs: ms(),
    statementTimeoutMarginMs: ms(),
    validationTimeoutMs: ms(1),
    keepAliveInitialDelayMs: ms(),
    mainCluster: z.optional(clusterName()),
    clusters: z.optional(z.record(clusterName(), clusterSchema())),
    readerRetryAfterMs: ms(),
    logger: z.optional(z.custom<Log>((v) => typeof v === 'object' && v !== null)),
    clock: z.optional(z.custom<Clock>((v) => typeof (v as Clock | null)?.now === 'function')),
  }),
)

// Connection settings and credentials are turned into a client config by client-factory.ts.
type Passthrough =
  | 'connectionString'
  | 'host'
  | 'port'
  | 'database'
  | 'ssl'
  | 'sslCaPath'
  | 'credentials'
  | 'logger'
  | 'clusters'
type Resolved = Omit<Required<TenantPoolsOptions>, Passthrough | 'user' | 'password'> &
  Pick<TenantPoolsOptions, Passthrough>

/** Validates options (unknown keys included) and merges them over the defaults, once. */
export function resolveOptions(options: TenantPoolsOptions): Resolved {
  const parsed = schema().safeParse(options)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const key =
      issue?.code === 'unrecognized_keys' ? issue.keys.join(', ') : (issue?.path.join('.') ?? 'options')
    throw new InvalidOptionsError(`Invalid TenantPools option "${key}": ${issue?.message}`)
  }
  // The password stays with client-factory.ts, out of the merged options.
  const { user: _user, password: _password, ...rest } = options
  const merged = {
    ...defaults,
    schemaFor: (tenantId: string) => `${defaults.schemaPrefix}${tenantId}`,
    clock: systemClock,
    ...stripUndefined(rest),
  }
  if (merged.maxPerPool > merged.budget) {
    throw new InvalidOptionsError(
      `Invalid TenantPools option "maxPerPool": ${merged.maxPerPool} exceeds the budget of ${merged.budget}`,
    )
  }
  return merged
}

/** `o` without its undefined values, so that merging it over defaults keeps them. */
export const stripUndefined = <T extends object>(o: T): Partial<T> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>

/** Option ← environment variable. PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD are read by pg itself. */
const fromEnv = {
  connectionString: ['DATABASE_URL', 'string'],
  ssl: ['TENANT_POOLS_SSL_MODE', 'string'],
  sslCaPath: ['TENANT_POOLS_SSL_CA_PATH', 'string'],
  masterSchema: ['TENANT_POOLS_MASTER_SCHEMA', 'string'],
  maxPerPool: ['TENANT_POOLS_MAX_PER_POOL', 'number'],
  budget: ['TENANT_POOLS_BUDGET', 'number'],
  maxPools: ['TENANT_POOLS_MAX_POOLS', 'number'],
  idleTimeoutMs: ['TENANT_POOLS_IDLE_TIMEOUT_MS', 'number'],
  poolTtlMs: ['TENANT_POOLS_POOL_TTL_MS', 'number'],
  connectTimeoutMs: ['TENANT_POOLS_CONNECT_TIMEOUT_MS', 'number'],
  maxLifetimeMs: ['TENANT_POOLS_MAX_LIFETIME_MS', 'number'],
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
} as const

/** Reads the options that have an environment variable. A malformed value names its variable. */
export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): TenantPoolsOptions {
  const out: Record<string, unknown> = {}
  for (const [option, [name, type]] of Object.entries(fromEnv)) {
    const raw = env[name]
    if (raw === undefined || raw === '') continue
    if (type === 'string') out[option] = raw
    else if (type === 'boolean') {
      if (raw !== 'true' && raw !== 'false') throw new InvalidOptionsError(`${name} must be true or false`)
      out[option] = raw === 'true'
    } else {
      const n = Number(raw)
      if (!Number.isInteger(n)) throw new InvalidOptionsError(`${name} must be an integer`)
      out[option] = n
    }
  }
  const prefix = env.TENANT_POOLS_SCHEMA_PREFIX
  if (prefix) out.schemaFor = (tenantId: string) => `${prefix}${tenantId}`
  const secretId = env.TENANT_POOLS_SECRET_ID || undefined
  const pattern = env.TENANT_POOLS_TENANT_SECRET_PATTERN || undefined
  if (pattern !== undefined && !pattern.includes('{tenantId}')) {
    throw new InvalidOptionsError('TENANT_POOLS_TENANT_SECRET_PATTERN must contain {tenantId}')
  }
  if (secretId || pattern) {
    out.credentials = secretsManagerCredentials({
      secretId,
      secretIdFor: pattern ? (tenantId) => pattern.replaceAll('{tenantId}', tenantId) : undefined,
      fallbackToSecretId: env.TENANT_POOLS_TENANT_SECRET_FALLBACK === 'true',
    })
  }
  const clusters = env.TENANT_POOLS_CLUSTERS || undefined
  if (clusters !== undefined) out.clusters = clustersFromJson(clusters)
  return out as TenantPoolsOptions
}

/**
 * TENANT_POOLS_CLUSTERS: `{"<name>": {"connectionString": "…", "reader": "postgres://…", "secretId":
 * "…", "maxConnections": 10, "ssl": "require"}}`. A cluster's secretId gives it credentials of its own.
 */
function clustersFromJson(raw: string): Record<string, ClusterOptions> {
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch {
    throw new InvalidOptionsError('TENANT_POOLS_CLUSTERS must be a JSON object of clusters by name')
  }
  const entry = z.strictObject({
    connectionString: text(),
    host: text(),
    port: port(),
    database: text(),
    ssl: z.optional(z.enum(SSL_MODES)),
    sslCaPath: text(),
    reader: z.optional(z.string().check(z.minLength(1))),
    secretId: text(),
    maxConnections: positive,
  })
  const checked = z.record(clusterName(), entry).safeParse(parsed)
  if (!checked.success) {
    const issue = checked.error.issues[0]
    throw new InvalidOptionsError(
      `TENANT_POOLS_CLUSTERS is invalid at "${issue?.path.join('.') ?? ''}": ${issue?.message}`,
    )
  }
  const out: Record<string, ClusterOptions> = {}
  for (const [name, { reader, secretId, ...rest }] of Object.entries(checked.data)) {
    out[name] = stripUndefined({
      ...rest,
      reader: reader === undefined ? undefined : { connectionString: reader },
      credentials: secretId === undefined ? undefined : secretsManagerCredentials({ secretId }),
    })
  }
  return out
}

export const environmentVariables = fromEnv
