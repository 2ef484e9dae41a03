// End to end on two clusters: the local stack started with TENANT_POOLS_LOCAL_CLUSTERS=2, tenants
// placed on each, their rows checked on the servers themselves, and a move between them over HTTP.
import { type Stack, startStack } from '../support/stack'
import { stackApi } from '../support/stack-api'

let stack: Stack
const { api, admin, superuser } = stackApi(() => stack)

beforeAll(async () => {
  stack = await startStack({ TENANT_POOLS_LOCAL_CLUSTERS: '2', TENANT_CATALOG_TTL_MS: '300' })
}, 180_000)
afterAll(() => stack?.stop())

const order = (customer: string) => ({ customer, lines: [{ sku: 'S', quantity: 1, unitCents: 100 }] })

// The schemas of tenant `id` on a server, and its orders' customers there.
const onServer = (port: number, id: string) =>
  superuser(async (c) => {
    const { rowCount } = await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [`tenant_${id}`])
    if (!rowCount) return undefined
    const { rows } = await c.query<{ customer: string }>(
      `SELECT customer FROM tenant_${id}.orders ORDER BY customer`,
    )
    return rows.map((r) => r.customer)
  }, port)

// The app's sessions on a server, as owner or tenant traffic (not ours, the superuser's).
const appSessions = (port: number) =>
  superuser(async (c) => {
    const { rows } = await c.query<{ name: string }>(
      `SELECT application_name AS name FROM pg_stat_activity WHERE usename IN ('app', 'app_tenant') ORDER BY 1`,
    )
    return rows.map((r) => r.name)
  }, port)

describe('e2e: tenants on two clusters', () => {
  const onMain = `m${Date.now().toString(36)}`
  const onB = `b${Date.now().toString(36)}`

  it('places tenants where asked, refuses an unknown cluster, and keeps each one’s rows on its cluster', async () => {
    expect((await admin('POST', '/admin/tenants', { id: onMain, cluster: 'main' })).body).toMatchObject({
      id: onMain,
      cluster: 'main',
    })
    // No connection to b yet: none of the tenants served so far lives there.
    expect((await api('POST', '/orders', { tenant: onMain, body: order('main-1') })).status).toBe(201)
    expect((await api('GET', '/orders', { tenant: onMain })).status).toBe(200)
    expect(await appSessions(stack.pgPortB)).toEqual([])

    const refused = await admin('POST', '/admin/tenants', { id: 'nowhere', cluster: 'nope' })
    expect({ status: refused.status, code: refused.body.error?.code }).toEqual({
      status: 400,
      code: 'UNKNOWN_CLUSTER',
    })
    expect((await admin('POST', '/admin/tenants', { id: onB, cluster: 'b' })).body).toMatchObject({
      cluster: 'b',
    })
    expect((await api('POST', '/orders', { tenant: onB, body: order('b-1') })).status).toBe(201)
    const list = await api('GET', '/orders', { tenant: onB })
    expect((list.body.items as Array<{ customer: string }>).map((o) => o.customer)).toEqual(['b-1'])

    expect(await onServer(stack.pgPort, onMain)).toEqual(['main-1'])
    expect(await onServer(stack.pgPortB, onMain)).toBeUndefined()
    expect(await onServer(stack.pgPortB, onB)).toEqual(['b-1'])
    expect(await onServer(stack.pgPort, onB)).toBeUndefined()
    // On b, only b's tenant's sessions: the catalog (and the other tenant) stay on main.
    expect((await appSessions(stack.pgPortB)).every((name) => name.includes(`${onB}@b`))).toBe(true)
  })

  it('moves a tenant from main to b over HTTP; its orders follow, its old copy goes', async () => {
    expect((await api('POST', '/orders', { tenant: onMain, body: order('main-2') })).status).toBe(201)
    const moved = await admin('POST', `/admin/tenants/${onMain}/move`, { cluster: 'b' })
    expect(moved.status).toBe(200)
    expect(moved.body).toMatchObject({ from: 'main', to: 'b', oldCopyRemoved: true })
    expect(moved.body.tables).toEqual(
      expect.arrayContaining([
        { name: 'orders', rows: 2 },
        { name: 'order_lines', rows: 2 },
      ]),
    )
    expect(await onServer(stack.pgPortB, onMain)).toEqual(['main-1', 'main-2'])
    expect(await onServer(stack.pgPort, onMain)).toBeUndefined()
    // Served from b at once (this stack's catalog cache lives 300 ms; the fence covers the rest).
    const list = await api('GET', '/orders', { tenant: onMain })
    expect(list.status).toBe(200)
    expect((list.body.items as unknown[]).length).toBe(2)
    expect((await api('POST', '/orders', { tenant: onMain, body: order('main-3') })).status).toBe(201)
    expect(await onServer(stack.pgPortB, onMain)).toEqual(['main-1', 'main-2', 'main-3'])

    const again = await admin('POST', `/admin/tenants/${onMain}/move`, { cluster: 'b' })
    expect({ status: again.status, code: again.body.error?.code }).toEqual({
      status: 409,
      code: 'ALREADY_THERE',
    })
    const pools = await admin('GET', '/admin/pools')
    expect((pools.body.clusters as Array<{ name: string }>).map((c) => c.name)).toEqual(['main', 'b'])
  })
})
