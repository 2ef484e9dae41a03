// The middy middleware in process, on the real database: tenant resolution, catalog, lazy db, release.
import middy from '@middy/core'
import type { APIGatewayProxyEventV2WithJWTAuthorizer } from 'aws-lambda'
import { migrateMaster, provisionTenant } from '../../functions/admin/provision'
import { httpErrors, InvalidOptionsError, TenantCatalog, type TenantContext, tenantDb } from '../../lib'
import { endTestPools, testPools, uniqueTenant } from '../support/db'

const context = (id = 'req-1') =>
  ({
    awsRequestId: id,
    functionName: 'test',
    getRemainingTimeInMillis: () => 30_000,
  }) as unknown as TenantContext

// `jwt: false`: no authorizer ran (serverless-offline with it turned off), so no JWT context at all.
const event = ({ claim, header, jwt = true }: { claim?: string; header?: string; jwt?: boolean }) =>
  ({
    headers: header === undefined ? {} : { 'x-tenant-id': header },
    requestContext: jwt
      ? { authorizer: { jwt: { claims: claim === undefined ? {} : { tenant_id: claim } } } }
      : {},
  }) as unknown as APIGatewayProxyEventV2WithJWTAuthorizer

describe('Middleware: tenantDb', () => {
  afterEach(endTestPools)

  async function setup(trustHeader = false) {
    const t = testPools()
    const tenant = uniqueTenant('mw')
    await migrateMaster(t.pools)
    await provisionTenant(t.pools, tenant)
    const catalog = new TenantCatalog(() => t.pools, { ttlMs: 60_000 })
    const wrap = (
      handler: (e: APIGatewayProxyEventV2WithJWTAuthorizer, c: TenantContext) => Promise<unknown>,
    ) =>
      middy<APIGatewayProxyEventV2WithJWTAuthorizer, unknown, Error, TenantContext>()
        .use(httpErrors({ logger: { debug() {}, info() {}, warn() {}, error() {} } }))
        .use(tenantDb({ pools: () => t.pools, catalog, trustHeader }))
        .handler(handler)
    return { ...t, tenant, catalog, wrap }
  }

  const status = (res: unknown) => (res as { statusCode: number }).statusCode
  const code = (res: unknown) => JSON.parse((res as { body: string }).body).error.code

  it('takes the tenant from the JWT claim and ignores the header unless trusted', async () => {
    const { tenant, wrap } = await setup(false)
    const handler = wrap(async (_e, c) => ({ statusCode: 200, body: c.tenant.id }))

    await expect(handler(event({ claim: tenant }), context())).resolves.toMatchObject({ body: tenant })
    expect(code(await handler(event({ header: tenant }), context()))).toBe('TENANT_REQUIRED')
    expect(status(await handler(event({}), context()))).toBe(401)
  })

  it('gives the tenant as a pg.Pool, and fails a request whose handler keeps a connection from it', async () => {
    const { tenant, wrap, pools } = await setup(false)
    const reads = wrap(async (_e, c) => {
      // The writer's pool, made once: not the read-only one of c.readDb.
      expect(c.pgPool).toBe(c.pgPool)
      expect(c.pgPool).toBe(c.db.asPgPool())
      expect(c.pgPool).not.toBe(c.readDb.asPgPool())
      const { rows } = await c.pgPool.query<{ schema: string; readOnly: string }>(
        'SELECT current_schema() AS schema, current_setting(\'transaction_read_only\') AS "readOnly"',
      )
      return { statusCode: 200, body: `${rows[0]?.schema} ${rows[0]?.readOnly}` }
    })
    await expect(reads(event({ claim: tenant }), context())).resolves.toMatchObject({
      body: `tenant_${tenant} off`,
    })
    // A transaction left open on a connection never released: the answer must not claim success.
    const leaks = wrap(async (_e, c) => {
      const client = await c.pgPool.connect()
      await client.query('BEGIN')
      return { statusCode: 201, body: 'created' }
    })
    const before = pools.stats().counters.connectionsClosed
    const res = await leaks(event({ claim: tenant }), context('req-leak'))
    expect(status(res)).toBe(500)
    await new Promise((r) => setTimeout(r, 50))
    expect(pools.stats().counters.connectionsClosed).toBe(before + 1)
    expect(pools.stats().totals.active).toBe(0)
  })

  it('fails a request that keeps a pg.Pool connection, even when a forgotten call was still running', async () => {
    const { tenant, wrap, pools } = await setup(false)
    let kept: { release: (err?: boolean) => void } | undefined
    const leaks = wrap(async (_e, c) => {
      kept = await c.pgPool.connect()
      void c.db.query('SELECT pg_sleep(0.1)')
      return { statusCode: 201, body: 'created' }
    })
    try {
      expect(status(await leaks(event({ claim: tenant }), context('req-leak-busy')))).toBe(500)
      await new Promise((r) => setTimeout(r, 50))
      expect(pools.stats().totals.active).toBe(0)
    } finally {
      // Not reclaimed (the test failing): released here, so that ending the pools does not wait on it.
      if (pools.stats().totals.active > 0) kept?.release(true)
    }
  })

  it('uses the header where it is trusted (serverless-offline), only for a request without a JWT', async () => {
    const { tenant, wrap } = await setup(true)
    const handler = wrap(async (_e, c) => ({ statusCode: 200, body: c.tenant.id }))
    await expect(handler(event({ header: tenant, jwt: false }), context())).resolves.toMatchObject({
      body: tenant,
    })
    // As serverless-offline gives a request without a token: a jwt without claims.
    const offline = {
      headers: { 'x-tenant-id': tenant },
      requestContext: { authorizer: { jwt: { claims: undefined, scopes: undefined } } },
    } as unknown as APIGatewayProxyEventV2WithJWTAuthorizer
    await expect(handler(offline, context())).resolves.toMatchObject({ body: tenant })
    // A valid JWT without the claim names no tenant, whatever the headers say.
    const res = await handler(event({ header: tenant }), context())
    expect([status(res), code(res)]).toEqual([401, 'TENANT_REQUIRED'])
  })

  describe('trusting the header in a deployed function', () => {
    const saved = { ...process.env }
    afterEach(() => {
      process.env = { ...saved }
    })
    const build = (trustHeader?: boolean) => () =>
      tenantDb({
        pools: () => {
          throw new Error('not reached')
        },
        catalog: {} as TenantCatalog,
        trustHeader,
      })

    it.each([
      ['the variable', undefined, { TENANT_POOLS_TRUST_TENANT_HEADER: 'true' }],
      ['the option', true, {}],
    ])('is refused at init when %s asks for it, naming the variable', (_, trustHeader, env) => {
      Object.assign(process.env, {
        AWS_LAMBDA_FUNCTION_NAME: 'orders-list',
        TENANT_POOLS_STAGE: 'prod',
        ...env,
      })
      delete process.env.IS_OFFLINE
      expect(build(trustHeader)).toThrow(InvalidOptionsError)
      expect(build(trustHeader)).toThrow(/TENANT_POOLS_TRUST_TENANT_HEADER/)
      expect(build(trustHeader)).toThrow(/ is true in stage prod: /)
    })

    it('names no stage when none is set, and is still refused', () => {
      Object.assign(process.env, { AWS_LAMBDA_FUNCTION_NAME: 'orders-list' })
      delete process.env.TENANT_POOLS_STAGE
      delete process.env.IS_OFFLINE
      expect(build(true)).toThrow(/ is true in stage \(unset\): /)
    })

    it.each([
      ['under serverless-offline', { IS_OFFLINE: 'true', TENANT_POOLS_STAGE: 'prod' }],
      ['in the local stage', { TENANT_POOLS_STAGE: 'local' }],
    ])('is allowed %s', (_, env) => {
      Object.assign(process.env, {
        AWS_LAMBDA_FUNCTION_NAME: 'orders-list',
        TENANT_POOLS_TRUST_TENANT_HEADER: 'true',
        ...env,
      })
      expect(build()).not.toThrow()
    })

    it('is not asked for: a deployed function without it starts', () => {
      Object.assign(process.env, { AWS_LAMBDA_FUNCTION_NAME: 'orders-list', TENANT_POOLS_STAGE: 'prod' })
      delete process.env.TENANT_POOLS_TRUST_TENANT_HEADER
      delete process.env.IS_OFFLINE
      expect(build()).not.toThrow()
    })
  })

  it('answers 400 for an invalid id and 404 for an unknown one, caching unknown ids', async () => {
    const { pools, wrap } = await setup()
    const handler = wrap(async () => ({ statusCode: 200, body: '' }))

    // An invalid id is refused before the catalog is asked: no checkout at all, the master's included.
    const start = pools.stats().counters.checkouts
    for (const bad of ["x'; DROP TABLE tenants; --", 'UPPER', 'a:b', '', 'x'.repeat(49)]) {
      expect(status(await handler(event({ claim: bad }), context()))).toBe(bad === '' ? 401 : 400)
    }
    expect(pools.stats().counters.checkouts).toBe(start)
    const before = pools.stats().counters.checkouts
    for (let i = 0; i < 20; i++)
      expect(code(await handler(event({ claim: 'ghost_tenant' }), context()))).toBe('TENANT_NOT_FOUND')
    // Twenty requests for one unknown id made one catalog query.
    expect(pools.stats().counters.checkouts - before).toBe(1)
  })

  it('answers 403 for a suspended tenant', async () => {
    const { pools, tenant, catalog, wrap } = await setup()
    await pools.master.query(`UPDATE tenants SET status = 'suspended' WHERE id = $1`, [tenant])
    catalog.invalidate(tenant)
    expect(code(await wrap(async () => ({ statusCode: 200 }))(event({ claim: tenant }), context()))).toBe(
      'TENANT_SUSPENDED',
    )
  })

  it('answers 404 for a deleted tenant, and tells the caller why each refusal was made', async () => {
    const { pools, tenant, catalog, wrap } = await setup()
    const handler = wrap(async () => ({ statusCode: 200 }))
    const error = async (claim?: string) => {
      const res = await handler(event({ claim }), context())
      return [status(res), JSON.parse((res as { body: string }).body).error.message]
    }
    expect(await error()).toEqual([401, 'No tenant: the request carries no tenant_id claim'])
    expect(await error('ghost_tenant')).toEqual([404, 'Unknown tenant'])
    await pools.master.query(`UPDATE tenants SET status = 'suspended' WHERE id = $1`, [tenant])
    catalog.invalidate(tenant)
    expect(await error(tenant)).toEqual([403, 'This tenant is suspended'])
    await pools.master.query(`UPDATE tenants SET status = 'deleted' WHERE id = $1`, [tenant])
    catalog.invalidate(tenant)
    expect(await error(tenant)).toEqual([404, 'Unknown tenant'])
  })

  it('gives context.readDb read-only and context.db read-write', async () => {
    const { tenant, wrap } = await setup()
    const handler = wrap(async (_e, c) => {
      const setting = async (db: TenantContext['db']) =>
        (await db.query<{ ro: string }>("SELECT current_setting('transaction_read_only') AS ro")).rows[0]?.ro
      return { statusCode: 200, body: `${await setting(c.db)} ${await setting(c.readDb)}` }
    })
    await expect(handler(event({ claim: tenant }), context())).resolves.toMatchObject({ body: 'off on' })
  })

  it('answers 401, not 500, for an event without the parts a JWT request has', async () => {
    const { tenant, wrap } = await setup(true)
    const handler = wrap(async (_e, c) => ({ statusCode: 200, body: c.tenant.id }))
    const bare = (e: object) => handler(e as APIGatewayProxyEventV2WithJWTAuthorizer, context())
    // Invoked directly: no requestContext, no headers.
    expect(code(await bare({}))).toBe('TENANT_REQUIRED')
    // Another kind of authorizer (a Lambda authorizer's context, no jwt): the trusted header is read.
    await expect(
      bare({ headers: { 'x-tenant-id': tenant }, requestContext: { authorizer: { lambda: {} } } }),
    ).resolves.toMatchObject({ body: tenant })
  })

  it('answers from the cache without a promise, and ends a request with nothing in flight without one', async () => {
    const { tenant, catalog, wrap, pools } = await setup()
    // Caches the tenant's placement.
    await wrap(async () => ({ statusCode: 200 }))(event({ claim: tenant }), context())
    expect(catalog.cached(tenant)).toBeDefined()
    const mw = tenantDb({ pools: () => pools, catalog })
    const request = {
      event: event({ claim: tenant }),
      context: context(),
      internal: {},
    } as unknown as Parameters<NonNullable<typeof mw.before>>[0]
    expect(mw.before?.(request)).toBeUndefined()
    expect(request.context.tenant.id).toBe(tenant)
    expect(mw.after?.(request)).toBeUndefined()
  })

  it('takes no tenant connection unless the handler uses context.db', async () => {
    const { pools, tenant, wrap } = await setup()
    await wrap(async () => ({ statusCode: 200 }))(event({ claim: tenant }), context())
    expect(pools.stats().pools.map((p) => p.key)).not.toContain(tenant)
  })

  it('releases everything the handler started, on success and on error, before answering', async () => {
    const { pools, tenant, wrap } = await setup()
    const active = () => pools.stats().pools.find((p) => p.key === tenant)?.active ?? 0

    // The handler forgets to await its queries.
    const sloppy = wrap(async (_e, c) => {
      void c.db.query('SELECT pg_sleep(0.2)')
      void c.db.transaction(async (client) => client.query('SELECT pg_sleep(0.2)'))
      return { statusCode: 200 }
    })
    await sloppy(event({ claim: tenant }), context())
    expect(active()).toBe(0)

    const failing = wrap(async (_e, c) => {
      void c.db.query('SELECT pg_sleep(0.2)')
      throw new Error('handler bug')
    })
    const res = await failing(event({ claim: tenant }), context())
    expect(status(res)).toBe(500)
    expect((res as { body: string }).body).not.toContain('handler bug')
    expect(active()).toBe(0)
  })

  it('waits for a call the handler chained from a forgotten one, and for its reader’s calls', async () => {
    const { pools, tenant, wrap } = await setup()
    const active = () =>
      pools
        .stats()
        .scopes.filter((p) => p.tenantId === tenant)
        .reduce((n, p) => n + p.active, 0)
    let chainedRan = false
    const sloppy = wrap(async (_e, c) => {
      void c.db
        .query('SELECT pg_sleep(0.1)')
        .then(() => c.db.query('SELECT pg_sleep(0.1)'))
        .then(() => {
          chainedRan = true
        })
      void c.readDb.query('SELECT pg_sleep(0.15)')
      return { statusCode: 200 }
    })
    expect(status(await sloppy(event({ claim: tenant }), context()))).toBe(200)
    expect(chainedRan).toBe(true)
    expect(active()).toBe(0)
  })

  it('asks the catalog once per tenant while its entry is fresh, and again once it is not', async () => {
    const t = testPools()
    const tenant = uniqueTenant('mwc')
    await migrateMaster(t.pools)
    await provisionTenant(t.pools, tenant)
    let now = 1_000_000
    const catalog = new TenantCatalog(() => t.pools, { ttlMs: 10_000, clock: { now: () => now } })
    const handler = middy<APIGatewayProxyEventV2WithJWTAuthorizer, unknown, Error, TenantContext>()
      .use(httpErrors({ logger: { debug() {}, info() {}, warn() {}, error() {} } }))
      .use(tenantDb({ pools: () => t.pools, catalog }))
      .handler(async (_e, c) => ({ statusCode: 200, body: c.tenant.status }))
    const checkouts = () => t.pools.stats().counters.checkouts

    const first = checkouts()
    await expect(handler(event({ claim: tenant }), context())).resolves.toMatchObject({ body: 'active' })
    expect(checkouts() - first).toBe(1)
    // Fresh: answered from the cache, no statement at all
    const warm = checkouts()
    for (let i = 0; i < 5; i++) await handler(event({ claim: tenant }), context())
    expect(checkouts() - warm).toBe(0)
    // Stale: asked again, and a change made meanwhile is seen
    await t.pools.master.query(`UPDATE tenants SET status = 'suspended' WHERE id = $1`, [tenant])
    const stale = checkouts()
    now += 9_999
    expect(status(await handler(event({ claim: tenant }), context()))).toBe(200)
    now += 1
    expect(code(await handler(event({ claim: tenant }), context()))).toBe('TENANT_SUSPENDED')
    expect(checkouts() - stale).toBe(1)
  })
})
