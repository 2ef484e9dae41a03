// The database clusters a registry connects to: per cluster, how to open a connection to its writer
// (and its reader, if any), the logins known without asking a credentials provider, and its share
// of the environment's budget. Physical connections never cross clusters: a login is keyed by its
// endpoint.
import type { ClientConfig } from 'pg'
import { parseIntoClientConfig } from 'pg-connection-string'
import {
  type ClusterOptions,
  type ReaderOptions,
  type resolveOptions,
  stripUndefined,
  type TenantPoolsOptions,
} from '../config/options'
import { InvalidOptionsError } from '../errors'
import { ConnectionBudget } from '../pool/budget'
import { type Budget, CappedBudget } from '../pool/capped-budget'
import { baseConfig, endpointOf, type FactorySettings } from '../pool/connector'
import { usesTls } from '../pool/tls'
import type { Credentials } from '../types'

/** One endpoint of a cluster: its writer, or its reader. */
export interface Endpoint {
  factory: FactorySettings
  /** `host:port/database`. */
  address: string
  /** The one login of every scope when no credentials provider is given (and not proxy-safe). */
  staticLoginKey: string | undefined
}

export interface Cluster {
  name: string
  writer: Endpoint
  reader: Endpoint | undefined
  budget: Budget
  /** The cluster's own cap, if it has one. */
  cap: number | undefined
  /** Until when its reader is skipped after it could not be reached (registry clock). */
  readerDownUntil: number
}

type Resolved = ReturnType<typeof resolveOptions>
// The resolved options, and how an endpoint's credentials request learns whether a role exists.
type Shared = Resolved & { roleExists: (name: string) => Promise<boolean> }

// Settings a cluster other than the main one takes from the top level when it gives none.
const INHERITED = ['ssl', 'sslCaPath', 'user', 'password', 'credentials'] as const

/** The clusters of `options`: the main one (top-level settings) and every one of `options.clusters`. */
export function buildClusters(
  options: TenantPoolsOptions,
  o: Resolved,
  budget: ConnectionBudget,
  freeIdleSlot: (cluster: string) => void,
  roleExists: (name: string) => Promise<boolean>,
): Map<string, Cluster> {
  const shared: Shared = { ...o, roleExists }
  const named = { ...options.clusters }
  const main = o.mainCluster
  const clusters = new Map<string, Cluster>()
  const topLevel = withLogin(options)
  const mainOwn = named[main] ?? {}
  delete named[main]
  const { reader: _r, maxConnections: _m, ...mainSettings } = mainOwn
  const top: TenantPoolsOptions = { ...options, ...stripUndefined(mainSettings) }
  clusters.set(main, cluster(main, top, mainOwn, shared, budget, freeIdleSlot))
  for (const [name, own] of Object.entries(named)) {
    if (own.connectionString === undefined && own.host === undefined) {
      throw new InvalidOptionsError(
        `Invalid TenantPools option "clusters.${name}": give its connectionString or host`,
      )
    }
    const given = withLogin(own)
    const inherited: TenantPoolsOptions = {}
    for (const key of INHERITED)
      if (given[key] === undefined) Object.assign(inherited, { [key]: topLevel[key] })
    if (own.connectionString === undefined && own.database === undefined)
      inherited.database = databaseOf(options)
    const { reader: _reader, maxConnections: _max, ...endpoint } = own
    clusters.set(
      name,
      cluster(name, { ...inherited, ...stripUndefined(endpoint) }, own, shared, budget, freeIdleSlot),
    )
  }
  return clusters
}

// A login may be given in a connection string: a cluster inherits the top level's user and password
// from there too, and one that names its own there keeps them.
function withLogin<T extends TenantPoolsOptions>(settings: T): T {
  const { user, password } = baseConfig(settings)
  return { ...settings, user, password }
}

function cluster(
  name: string,
  settings: TenantPoolsOptions,
  own: ClusterOptions,
  o: Shared,
  budget: ConnectionBudget,
  freeIdleSlot: (cluster: string) => void,
): Cluster {
  const writer = endpoint(settings, o)
  const reader = own.reader ? endpoint(readerSettings(settings, own.reader), o) : undefined
  if (own.maxConnections !== undefined && own.maxConnections > o.budget) {
    throw new InvalidOptionsError(
      `Invalid TenantPools option "clusters.${name}.maxConnections": ${own.maxConnections} exceeds the budget of ${o.budget}`,
    )
  }
  const capped =
    own.maxConnections === undefined
      ? budget
      : new CappedBudget(
          new ConnectionBudget(
            own.maxConnections,
            () => freeIdleSlot(name),
            () => o.clock.now(),
          ),
          budget,
        )
  return { name, writer, reader, budget: capped, cap: own.maxConnections, readerDownUntil: 0 }
}

function endpoint(settings: TenantPoolsOptions, o: Shared): Endpoint {
  const { base, user, password } = baseConfig(settings, o.keepAliveInitialDelayMs)
  if (settings.credentials?.requiresTls && !usesTls(base.ssl)) {
    throw new InvalidOptionsError(
      'Invalid TenantPools option "ssl": these credentials (an RDS IAM token) must only travel over TLS; ' +
        "set ssl to 'require' or 'verify-full'",
    )
  }
  const address = endpointOf(base)
  return {
    factory: {
      base,
      credentials: settings.credentials ?? (async () => ({ user, password }) as Credentials),
      applicationNamePrefix: o.applicationNamePrefix,
      connectTimeoutMs: o.connectTimeoutMs,
      statementTimeoutMs: o.statementTimeoutMs,
      idleSessionTimeoutMs: o.idleSessionTimeoutMs,
      proxySafe: o.proxySafe,
      roleExists: o.roleExists,
    },
    address,
    staticLoginKey:
      settings.credentials || o.proxySafe ? undefined : `${address}|${user ?? process.env.PGUSER ?? ''}`,
  }
}

// A reader is the writer's database and login on another host, and on the writer's port unless it
// gives its own (an Aurora reader endpoint listens where its writer does).
function readerSettings(writer: TenantPoolsOptions, reader: ReaderOptions): TenantPoolsOptions {
  const parsed: ClientConfig = reader.connectionString ? parseIntoClientConfig(reader.connectionString) : {}
  const host = reader.host ?? parsed.host ?? undefined
  const port = reader.port ?? (parsed.port === undefined ? undefined : Number(parsed.port))
  if (host === undefined) throw new InvalidOptionsError('Invalid TenantPools option "reader": give its host')
  return { ...writer, host, ...(port === undefined ? {} : { port }), database: databaseOf(writer) }
}

function databaseOf(settings: TenantPoolsOptions): string | undefined {
  if (settings.database !== undefined) return settings.database
  if (settings.connectionString === undefined) return undefined
  return parseIntoClientConfig(settings.connectionString).database ?? undefined
}
