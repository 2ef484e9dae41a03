// Options of a TenantPools registry: their public types, their one schema, and their merge over the
// defaults. The environment variables behind them are read in env.ts.
import type { ConnectionOptions } from 'node:tls'
import { InvalidOptionsError } from '../errors'
import { SSL_MODES, type SslMode } from '../pool/tls'
import { type Clock, type CredentialsProvider, type Log, systemClock } from '../types'
import * as z from '../zod'
import { defaults } from './defaults'

/**
 * Where a cluster's replica (or Aurora reader endpoint) answers: its database and login are the
 * writer's.
 *
 * @example
 * const options: TenantPoolsOptions = {
 *   clusters: { main: { reader: { host: 'my-db.cluster-ro-abc.eu-west-1.rds.amazonaws.com' } } },
 * }
 */
export interface ReaderOptions {
  /** Only its host and port are used. */
  connectionString?: string
  host?: string
  port?: number
}

/**
 * Where a database answers and how to log in: the top level's settings, and each cluster's.
 *
 * @example
 * const settings: ConnectionSettings = { host: 'db.internal', port: 5432, database: 'app', ssl: 'verify-full' }
 */
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
 *
 * @example
 * const pools = new TenantPools({
 *   connectionString: process.env.DATABASE_URL,
 *   clusters: { b: { connectionString: process.env.CLUSTER_B_URL, maxConnections: 4 } },
 * })
 * pools.forTenant('acme', { cluster: 'b' })
 */
export interface ClusterOptions extends ConnectionSettings {
  reader?: ReaderOptions
  /** This environment's connections to the cluster, within the budget. Default: the budget. */
  maxConnections?: number
}

/**
 * The registry's options: each is described in docs/configuration.md, with its environment variable
 * and default; any not given is read from `defaults`.
 *
 * @example
 * const pools = new TenantPools({
 *   connectionString: process.env.DATABASE_URL,
 *   maxPerScope: 2,
 *   scopeTtlMs: 60_000,
 * })
 */
export interface TenantPoolsOptions extends ConnectionSettings {
  /** Schema of a tenant; default `tenant_<id>`. */
  schemaFor?: (tenantId: string) => string
  /** Schema of the master/catalog pool. */
  masterSchema?: string
  /** Connections one scope (`tenantId[:app]`, or the master) may hold at once. */
  maxPerScope?: number
  /** @deprecated Until the next minor version: the old name of `maxPerScope`. */
  maxPerPool?: number
  /** Connections across all scopes of this environment. */
  budget?: number
  /** Scopes kept at once; past it the least recently used quiet one is retired (LRU). */
  maxScopes?: number
  /** @deprecated Until the next minor version: the old name of `maxScopes`. */
  maxPools?: number
  idleTimeoutMs?: number
  /** A scope unused this long is retired as a whole (TTL). */
  scopeTtlMs?: number
  /** @deprecated Until the next minor version: the old name of `scopeTtlMs`. */
  poolTtlMs?: number
  connectTimeoutMs?: number
  maxLifetimeMs?: number
  /**
   * Distinct schemas a connection may have served; once it has, it takes no new schema and is closed
   * at its next release (its backend's catalog cache grows with every schema). 0: no bound.
   */
  maxSchemasPerConnection?: number
  /**
   * Keep the first connection of a login to reach maxSchemasPerConnection open for the schemas it
   * served, instead of closing it (any other still closes): under a skewed load, the busiest tenants
   * keep a warm backend. Costs one more backend at the bound per login.
   */
  keepFullConnection?: boolean
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

export const ms = (min = 0) => z.optional(z.int().check(z.gte(min), z.lte(2_147_483_647)))
export const positive = () => z.optional(z.int().check(z.gte(1), z.lte(10_000)))
// A count where 0 means no bound (Infinity is not an integer: give 0).
const count = () => z.optional(z.int().check(z.gte(0), z.lte(1_000_000)))
export const text = (max = 10_000) => z.optional(z.string().check(z.minLength(1), z.maxLength(max)))
const fn = <T>(what: string) =>
  z.optional(z.custom<T>((v) => typeof v === 'function', { message: `expected ${what} to be a function` }))

// Built on first use, as every schema here: a function's init builds none of them.
export const clusterName = z.builtOnFirstUse(() => z.string().check(z.regex(/^[a-z][a-z0-9_-]{0,31}$/)))
export const port = () => z.optional(z.int().check(z.gte(1), z.lte(65_535)))

/** ConnectionSettings, checked: the top level's and each cluster's. Each field's schema, built when asked for. */
const connectionFields = {
  connectionString: () => text(),
  host: () => text(),
  port: () => port(),
  database: () => text(),
  ssl: () => z.optional(z.union([z.enum(SSL_MODES), z.boolean(), z.looseObject({})])),
  sslCaPath: () => text(),
  user: () => text(),
  password: () => z.optional(z.string()),
  credentials: () => fn<CredentialsProvider>('credentials'),
}

const built = (fields: Record<string, () => z.ZodMiniType>) =>
  Object.fromEntries(Object.entries(fields).map(([key, field]) => [key, field()]))

/** ClusterOptions, checked: the one schema of a cluster, given as an option or in TENANT_POOLS_CLUSTERS. */
export const clusterSchema = () =>
  z.strictObject({
    ...built(connectionFields),
    reader: z.optional(z.strictObject({ connectionString: text(), host: text(), port: port() })),
    maxConnections: positive(),
  })

// Every option's schema, in the order the errors are looked for; each one optional.
const fields: Record<keyof TenantPoolsOptions, () => z.ZodMiniType> = {
  ...connectionFields,
  schemaFor: () => fn<(tenantId: string) => string>('schemaFor'),
  masterSchema: () => text(63),
  maxPerScope: () => positive(),
  maxPerPool: () => positive(),
  budget: () => positive(),
  maxScopes: () => positive(),
  maxPools: () => positive(),
  idleTimeoutMs: () => ms(),
  scopeTtlMs: () => ms(),
  poolTtlMs: () => ms(),
  connectTimeoutMs: () => ms(1),
  maxLifetimeMs: () => ms(1),
  maxSchemasPerConnection: () => count(),
  keepFullConnection: () => z.optional(z.boolean()),
  statementTimeoutMs: () => ms(),
  idleSessionTimeoutMs: () => ms(),
  applicationNamePrefix: () => z.optional(z.string().check(z.maxLength(30), z.regex(/^[A-Za-z0-9_.-]*$/))),
  proxySafe: () => z.optional(z.boolean()),
  validateAfterIdleMs: () => ms(),
  sweepIntervalMs: () => ms(1),
  leakDetectionMs: () => ms(),
  statementTimeoutMarginMs: () => ms(),
  validationTimeoutMs: () => ms(1),
  keepAliveInitialDelayMs: () => ms(),
  mainCluster: () => z.optional(clusterName()),
  clusters: () => z.optional(z.record(clusterName(), clusterSchema())),
  readerRetryAfterMs: () => ms(),
  logger: () => z.optional(z.custom<Log>((v) => typeof v === 'object' && v !== null)),
  clock: () => z.optional(z.custom<Clock>((v) => typeof (v as Clock | null)?.now === 'function')),
}

// The options' schema, with only the fields `options` gives: every field is optional, so one not
// given could fail nothing, and building all some forty of them for the handful an environment sets
// was most of a registry's construction at a cold start (about 6 ms; zod/mini's objects are cheap to
// use, not to build). A key of no option is still refused, as the strict object's own issue.
const schemaOf = (options: TenantPoolsOptions) => {
  const given = new Set(Object.keys(options))
  return z.strictObject(built(Object.fromEntries(Object.entries(fields).filter(([key]) => given.has(key)))))
}

// Connection settings and credentials are turned into a client config by pool/connector.ts.
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
type Resolved = Omit<Required<TenantPoolsOptions>, Passthrough | Alias | 'user' | 'password'> &
  Pick<TenantPoolsOptions, Passthrough>

/** Old option names, kept for one minor version: each sets the option it names. */
export const optionAliases = {
  maxPerPool: 'maxPerScope',
  maxPools: 'maxScopes',
  poolTtlMs: 'scopeTtlMs',
} as const satisfies Partial<Record<keyof TenantPoolsOptions, keyof TenantPoolsOptions>>
type Alias = keyof typeof optionAliases

// An old name sets its new one; both given, they must agree.
function withoutAliases(options: TenantPoolsOptions): TenantPoolsOptions {
  const out: Record<string, unknown> = { ...options }
  for (const [old, current] of Object.entries(optionAliases)) {
    const given = out[old]
    delete out[old]
    if (given === undefined) continue
    if (out[current] !== undefined && out[current] !== given) {
      throw new InvalidOptionsError(
        `Invalid TenantPools options "${old}" and "${current}": ${old} is the old name of ${current}; give one`,
      )
    }
    out[current] = given
  }
  return out as TenantPoolsOptions
}

/** Validates options (unknown keys included) and merges them over the defaults, once. */
export function resolveOptions(options: TenantPoolsOptions): Resolved {
  const parsed = schemaOf(options).safeParse(options)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    // An unknown key is named with where it is: a misspelt key inside a cluster is not a top-level option.
    const key =
      issue?.code === 'unrecognized_keys'
        ? issue.keys.map((k) => [...issue.path, k].join('.')).join(', ')
        : (issue?.path.join('.') ?? 'options')
    throw new InvalidOptionsError(`Invalid TenantPools option "${key}": ${issue?.message}`)
  }
  // The password stays with pool/connector.ts, out of the merged options.
  const { user: _user, password: _password, ...rest } = withoutAliases(options)
  const merged = {
    ...defaults,
    schemaFor: (tenantId: string) => `${defaults.schemaPrefix}${tenantId}`,
    clock: systemClock,
    ...stripUndefined(rest),
  }
  if (merged.maxPerScope > merged.budget) {
    throw new InvalidOptionsError(
      `Invalid TenantPools option "maxPerScope": ${merged.maxPerScope} exceeds the budget of ${merged.budget}`,
    )
  }
  return merged as Resolved
}

/** `o` without its undefined values, so that merging it over defaults keeps them. */
export const stripUndefined = <T extends object>(o: T): Partial<T> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
