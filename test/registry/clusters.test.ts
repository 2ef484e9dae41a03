// How a registry's options become its clusters (clusters.ts): what a cluster other than the main one
// takes from the top level, where its reader answers, its login key and its cap. No server is
// reached: buildClusters only describes endpoints.

import { resolveOptions, type TenantPoolsOptions } from '../../lib/config/options'
import { InvalidOptionsError } from '../../lib/errors'
import { ConnectionBudget } from '../../lib/pool/budget'
import { buildClusters } from '../../lib/registry/clusters'
import type { CredentialsProvider } from '../../lib/types'

const PG_ENV = ['PGHOST', 'PGPORT', 'PGDATABASE', 'PGUSER'] as const
const saved = Object.fromEntries(PG_ENV.map((k) => [k, process.env[k]]))
beforeEach(() => {
  for (const k of PG_ENV) delete process.env[k]
})
afterAll(() => {
  for (const k of PG_ENV) if (saved[k] !== undefined) process.env[k] = saved[k]
})

const build = (options: TenantPoolsOptions, freeIdleSlot: (cluster: string) => void = () => {}) => {
  const o = resolveOptions(options)
  return buildClusters(options, o, new ConnectionBudget(o.budget, () => {}), freeIdleSlot, async () => false)
}
const get = <T>(map: Map<string, T>, name: string): T => {
  const value = map.get(name)
  if (value === undefined) throw new Error(`no cluster ${name}`)
  return value
}
const loginOf = async (provider: CredentialsProvider) =>
  provider({ key: 't', tenantId: 't', app: null, cluster: 'c', forceRefresh: false })

describe('Function: buildClusters', () => {
  it('gives a cluster with only a host the top level database, ssl and login', async () => {
    const clusters = build({
      connectionString: 'postgres://top-user:top-pw@top-host:6000/topdb',
      ssl: 'disable',
      clusters: { b: { host: 'b-host', port: 7000 } },
    })
    const b = get(clusters, 'b')
    expect(b.writer.address).toBe('b-host:7000/topdb')
    expect(b.writer.factory.base.ssl).toBe(false)
    expect(b.writer.staticLoginKey).toBe('b-host:7000/topdb|top-user')
    expect(await loginOf(b.writer.factory.credentials)).toEqual({ user: 'top-user', password: 'top-pw' })
    expect(get(clusters, 'main').writer.address).toBe('top-host:6000/topdb')
  })

  it('lets a cluster that gives its own settings keep them', async () => {
    const top: CredentialsProvider = async () => ({ user: 'top', password: 'x' })
    const own: CredentialsProvider = async () => ({ user: 'own', password: 'y' })
    const clusters = build({
      host: 'top-host',
      database: 'topdb',
      user: 'top-user',
      credentials: top,
      clusters: {
        b: { host: 'b-host', database: 'bdb', credentials: own },
        c: { host: 'c-host', user: 'c-user' },
      },
    })
    const b = get(clusters, 'b')
    expect(b.writer.address).toBe('b-host:5432/bdb')
    expect((await loginOf(b.writer.factory.credentials)).user).toBe('own')
    expect(b.writer.staticLoginKey).toBeUndefined()
    // c inherits the top level's provider but keeps its own user for the key it would use without one.
    expect((await loginOf(get(clusters, 'c').writer.factory.credentials)).user).toBe('top')
  })

  it("takes a cluster's database and login from its own connection string, not from the top level", async () => {
    const clusters = build({
      connectionString: 'postgres://top-user:top-pw@top-host:6000/topdb',
      clusters: {
        b: { connectionString: 'postgres://b-user:b-pw@b-host:7000/bdb' },
        c: { connectionString: 'postgres://c-user@c-host/cdb' },
      },
    })
    const b = get(clusters, 'b')
    expect(b.writer.address).toBe('b-host:7000/bdb')
    expect(await loginOf(b.writer.factory.credentials)).toEqual({ user: 'b-user', password: 'b-pw' })
    expect(b.writer.staticLoginKey).toBe('b-host:7000/bdb|b-user')
    // A connection string naming a user gives the whole login: the top level's password is not sent
    // for another user.
    expect(await loginOf(get(clusters, 'c').writer.factory.credentials)).toEqual({
      user: 'c-user',
      password: '',
    })
  })

  it('prefers an explicit database to the one in the connection string, for clusters and readers', () => {
    const clusters = build({
      connectionString: 'postgres://top-host:6000/fromurl',
      database: 'explicit',
      clusters: { main: { reader: { host: 'replica' } }, b: { host: 'b-host' } },
    })
    const main = get(clusters, 'main')
    expect(main.writer.address).toBe('top-host:6000/explicit')
    expect(main.reader?.address).toBe('replica:6000/explicit')
    expect(get(clusters, 'b').writer.address).toBe('b-host:5432/explicit')
  })

  it("puts a reader on the writer's database and login, at its own host and port", () => {
    const clusters = build({
      connectionString: 'postgres://app@top-host:6000/topdb',
      clusters: {
        main: { reader: { connectionString: 'postgres://ignored@replica-host/otherdb' } },
        b: { host: 'b-host', reader: { connectionString: 'postgres://b-replica:7001' } },
      },
    })
    const main = get(clusters, 'main')
    // No port in the reader's string: the writer's port, never NaN.
    expect(main.reader?.address).toBe('replica-host:6000/topdb')
    expect(main.reader?.staticLoginKey).toBe('replica-host:6000/topdb|app')
    expect(get(clusters, 'b').reader?.address).toBe('b-replica:7001/topdb')
  })

  it("puts a reader given by host alone on its writer's port, however the writer gives it", () => {
    const clusters = build({
      host: 'top-host',
      port: 6000,
      database: 'topdb',
      clusters: {
        main: { reader: { host: 'replica' } },
        b: { host: 'b-host', reader: { host: 'b-replica' } },
      },
    })
    expect(get(clusters, 'main').reader?.address).toBe('replica:6000/topdb')
    expect(get(clusters, 'b').reader?.address).toBe('b-replica:5432/topdb')
  })

  it('refuses a reader with no host', () => {
    const call = () => build({ host: 'h', clusters: { main: { reader: { port: 5433 } } } })
    expect(call).toThrow(InvalidOptionsError)
    expect(call).toThrow('Invalid TenantPools option "reader": give its host')
  })

  it('keys the static login by PGUSER when no user is given, and by nothing at all without it', () => {
    expect(get(build({ host: 'h', database: 'd' }), 'main').writer.staticLoginKey).toBe('h:5432/d|')
    process.env.PGUSER = 'env-user'
    expect(get(build({ host: 'h', database: 'd' }), 'main').writer.staticLoginKey).toBe('h:5432/d|env-user')
    expect(
      get(build({ host: 'h', database: 'd', proxySafe: true }), 'main').writer.staticLoginKey,
    ).toBeUndefined()
  })

  it('accepts a cluster cap equal to the budget and refuses one above it', () => {
    expect(
      get(build({ host: 'h', budget: 4, clusters: { b: { host: 'b', maxConnections: 4 } } }), 'b').cap,
    ).toBe(4)
    expect(() => build({ host: 'h', budget: 4, clusters: { b: { host: 'b', maxConnections: 5 } } })).toThrow(
      'Invalid TenantPools option "clusters.b.maxConnections": 5 exceeds the budget of 4',
    )
  })

  it('asks the capped cluster, by name, to free an idle slot when a claim queues at its cap', () => {
    const asked: string[] = []
    const b = get(
      build({ host: 'h', budget: 4, clusters: { b: { host: 'b', maxConnections: 1 } } }, (c) =>
        asked.push(c),
      ),
      'b',
    )
    const granted: number[] = []
    b.budget.claim({ granted: () => granted.push(1) })
    expect(asked).toEqual([])
    b.budget.claim({ granted: () => granted.push(2) })
    expect(granted).toEqual([1])
    expect(asked).toEqual(['b'])
  })

  it('refuses IAM-token credentials without TLS, saying which modes to use', () => {
    const iam = Object.assign(async () => ({ user: 'u', password: 'token' }), { requiresTls: true })
    expect(() => build({ host: 'h', credentials: iam, ssl: 'disable' })).toThrow(
      'Invalid TenantPools option "ssl": these credentials (an RDS IAM token) must only travel over TLS; ' +
        "set ssl to 'require' or 'verify-full'",
    )
  })
})
