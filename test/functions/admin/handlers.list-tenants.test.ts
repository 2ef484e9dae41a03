// GET /admin/tenants pages the catalog by keyset, as /orders does: an opaque cursor, a limit (50 by
// default, at most 200), nextCursor null at the end. Pages cover every tenant exactly once; a cursor
// or limit it did not hand out is a 400, never a 500. Against a database of the test's own on the
// main server, so that the catalog holds exactly the tenants the test put there.
import type { APIGatewayProxyEventV2 } from 'aws-lambda'
import { databaseUrl, uniquePrefix, withAdmin } from '../../support/db'
import type { Handler } from '../../support/handler-world'

const TENANTS = 205
const ids = Array.from({ length: TENANTS }, (_, i) => `t${String(i).padStart(3, '0')}`)

interface Page {
  status: number
  body: { items?: { id: string }[]; nextCursor?: string | null; error?: { code: string } }
}

const event = (query?: Record<string, string>) =>
  ({
    headers: { 'x-admin-key': 'test-admin-key' },
    queryStringParameters: query,
    requestContext: { http: { method: 'GET', path: '/admin/tenants' } },
  }) as unknown as APIGatewayProxyEventV2

const context = { awsRequestId: 'r', functionName: 'admin', getRemainingTimeInMillis: () => 10_000 }
const b64 = (s: string) => Buffer.from(s).toString('base64url')

describe('GET /admin/tenants', () => {
  const saved = { ...process.env }
  const database = `${uniquePrefix()}_admin_list`
  let list: Handler
  let reset: () => Promise<void>
  const get = async (query?: Record<string, string>): Promise<Page> => {
    const res = await list(event(query), context)
    return { status: res.statusCode as number, body: JSON.parse(res.body as string) }
  }

  beforeAll(async () => {
    await withAdmin((admin) => admin.query(`CREATE DATABASE ${database}`))
    const url = new URL(databaseUrl())
    url.pathname = `/${database}`
    Object.assign(process.env, {
      DATABASE_URL: url.toString(),
      ADMIN_API_KEY: 'test-admin-key',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      POWERTOOLS_METRICS_DISABLED: 'true',
    })
    jest.resetModules()
    const lib = await import('../../../lib')
    const { migrateMaster } = await import('../../../functions/admin/provision')
    list = (await import('../../../functions/admin/handlers')).list as unknown as Handler
    reset = lib.resetTenantPools
    const pools = lib.getTenantPools()
    await migrateMaster(pools)
    await pools.master.query('INSERT INTO tenants (id) SELECT unnest($1::text[])', [ids])
  })

  afterAll(async () => {
    await reset?.()
    process.env = saved
    await withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`))
  })

  it('answers 50 tenants by default, and a cursor to the rest', async () => {
    const page = await get()
    expect(page.status).toBe(200)
    expect(page.body.items?.map((t) => t.id)).toEqual(ids.slice(0, 50))
    expect(page.body.nextCursor).toEqual(expect.any(String))
  })

  it('covers every tenant exactly once in two pages, in order, the last with no cursor', async () => {
    // Act
    const first = await get({ limit: '103' })
    const second = await get({ limit: '103', cursor: first.body.nextCursor as string })

    // Assess
    expect([first.status, second.status]).toEqual([200, 200])
    expect(first.body.items).toHaveLength(103)
    expect(second.body.items).toHaveLength(102)
    expect(second.body.nextCursor).toBeNull()
    expect([...(first.body.items ?? []), ...(second.body.items ?? [])].map((t) => t.id)).toEqual(ids)
  })

  it('ends with a null cursor when the last page is exactly full', async () => {
    const first = await get({ limit: '200' })
    expect(first.body.items).toHaveLength(200)
    const last = await get({ limit: '5', cursor: first.body.nextCursor as string })
    expect(last.body.items?.map((t) => t.id)).toEqual(ids.slice(200))
    expect(last.body.nextCursor).toBeNull()
  })

  it.each([
    ['a limit of 0', { limit: '0' }],
    ['a limit above 200', { limit: '201' }],
    ['a limit that is not an integer', { limit: '1.5' }],
    ['a limit that is not a number', { limit: 'all' }],
    ['a limit in hexadecimal', { limit: '0x10' }],
    ['a limit in exponent notation', { limit: '1e1' }],
    ['a limit with spaces', { limit: ' 5 ' }],
    ['an empty limit', { limit: '' }],
    ['a cursor with characters base64url has not', { cursor: 'not a cursor!' }],
    ['a cursor that is not JSON', { cursor: b64('t010') }],
    ['a cursor of another shape', { cursor: b64('{"id":"t010"}') }],
    ['a cursor holding no tenant id', { cursor: b64('["T 010; DROP"]') }],
    ['a cursor of two ids', { cursor: b64('["t010","t011"]') }],
    ['an unknown parameter', { offset: '100' }],
  ])('answers 400 VALIDATION_FAILED to %s, never a 500', async (_, query) => {
    const page = await get(query)
    expect(page.status).toBe(400)
    expect(page.body.error?.code).toBe('VALIDATION_FAILED')
  })
})
