// Property-based fuzzing of the HTTP handlers in process, through their real middleware and the real
// database: whatever a caller sends, the answer is a 2xx or a 4xx, never a 500, and an invalid
// tenant id never reaches the server.

import fc from 'fast-check'
import { getTenantPools } from '../../../../lib'
import { uniqueTenant } from '../../../support/db'
import {
  lambdaContext as context,
  type OrdersInProcess,
  ordersInProcess,
} from '../../../support/orders-in-process'

type Handlers = OrdersInProcess['handlers']

let world: OrdersInProcess
let handlers: Handlers
const tenant = uniqueTenant('fuzz')

beforeAll(async () => {
  world = await ordersInProcess([tenant], { TENANT_POOLS_APP_NAME_PREFIX: 'fuzz' })
  handlers = world.handlers
}, 60_000)

afterAll(() => world?.end())

const tenantIds = fc.oneof(
  fc.constant(tenant),
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 60 }),
  fc.stringMatching(/^[a-z0-9_]{1,48}$/),
  fc.constantFrom("x'; DROP TABLE orders; --", 'a\u0000b', 'A'.repeat(10_000), '', ' '),
)

// Deeply nested JSON, very large strings, unicode and NUL, or text that is not JSON at all.
const nested = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.jsonValue({ maxDepth: 3 }),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('value'), { maxKeys: 3 }),
  ),
})).value
const bodies = fc.oneof(
  nested.map((v) => JSON.stringify(v) ?? 'null'),
  fc
    .record({
      customer: fc.oneof(
        fc.string({ unit: 'grapheme' }),
        fc.constant('a\u0000b'),
        fc.constant('x'.repeat(300)),
      ),
      reference: fc.option(fc.string(), { nil: undefined }),
      lines: fc.array(
        fc.record({
          sku: fc.string(),
          quantity: fc.oneof(fc.integer(), fc.double()),
          unitCents: fc.integer(),
        }),
        { maxLength: 3 },
      ),
    })
    .map((v) => JSON.stringify(v)),
  fc
    .record({ status: fc.string(), version: fc.oneof(fc.integer(), fc.double(), fc.string()) })
    .map((v) => JSON.stringify(v)),
  fc.string(),
  fc.constant('{"a":'.repeat(2_000)),
)
const ids = fc.oneof(fc.uuid(), fc.string(), fc.constant('00000000-0000-0000-0000-000000000000'))
const queries = fc.oneof(
  fc.constant(undefined),
  fc.dictionary(fc.constantFrom('limit', 'cursor', 'x'), fc.oneof(fc.string(), fc.integer().map(String))),
)

const requests = fc.record({
  handler: fc.constantFrom<keyof Handlers>('create', 'list', 'get', 'patch', 'remove', 'stats', 'customers'),
  tenantId: tenantIds,
  body: fc.option(bodies, { nil: undefined }),
  id: ids,
  query: queries,
  contentType: fc.constantFrom('application/json', 'text/plain', undefined),
})

describe('Fuzz: the orders handlers', () => {
  it('answer every request with a 2xx or 4xx and a JSON error shape, never a 500', async () => {
    const seen = new Map<number, number>()
    await fc.assert(
      fc.asyncProperty(requests, async (r) => {
        const event = {
          headers: { 'x-tenant-id': r.tenantId, ...(r.contentType ? { 'content-type': r.contentType } : {}) },
          body: r.body,
          isBase64Encoded: false,
          queryStringParameters: r.query,
          pathParameters: { id: r.id },
          requestContext: { http: { method: 'POST', path: '/orders' } },
        }
        const res = await handlers[r.handler](event, context())
        const status = res.statusCode ?? 0
        seen.set(status, (seen.get(status) ?? 0) + 1)
        expect(status).toBeGreaterThanOrEqual(200)
        expect(status).toBeLessThan(500)
        if (status >= 400) {
          const body = JSON.parse(res.body ?? '') as { error: { code: string } }
          expect(Object.keys(body)).toEqual(['error'])
          expect(body.error.code).toEqual(expect.any(String))
        }
      }),
      { numRuns: 400 },
    )
    // The runs reached the database and the handlers, not only the tenant check.
    const statuses = [...seen.keys()]
    expect(statuses.some((st) => st >= 200 && st < 300)).toBe(true)
    expect(statuses).toEqual(expect.arrayContaining([400, 404]))
  }, 120_000)

  it('never opens a pool (so never sends SQL) for an invalid tenant id', async () => {
    const invalid = tenantIds.filter((id) => !/^[a-z0-9_]{1,48}$/.test(id))
    await fc.assert(
      fc.asyncProperty(invalid, async (tenantId) => {
        const res = await handlers.list(
          { headers: { 'x-tenant-id': tenantId }, requestContext: {} },
          context(),
        )
        expect(res.statusCode === 400 || res.statusCode === 401).toBe(true)
      }),
      { numRuns: 200 },
    )
    const keys = getTenantPools()
      .stats()
      .pools.map((p) => p.key)
    // A valid tenant id, and its cluster and access if any (`id@b`, `id/read-only`, `id/reader`).
    const valid = /^[a-z0-9_]{1,48}(@[a-z][a-z0-9_-]{0,31})?(\/(read-only|reader))?$/
    expect(keys.filter((k) => k !== '$master' && !valid.test(k))).toEqual([])
  }, 60_000)

  it('reads back exactly the text a create acknowledged, whatever UTF-16 it was sent as; a lone surrogate is a 400', async () => {
    // Any UTF-16 code unit, lone surrogates included (JSON can carry "\ud800" alone; UTF-8 cannot).
    const unit = fc.integer({ min: 1, max: 0xffff }).map((c) => String.fromCharCode(c))
    const texts = fc.string({ unit, minLength: 1, maxLength: 12 })
    const lone = /\p{Cs}/u
    const seen = { created: 0, refused: 0 }
    await fc.assert(
      fc.asyncProperty(texts, texts, async (customer, sku) => {
        const event = (method: string, body?: string, id?: string) => ({
          headers: { 'x-tenant-id': tenant, 'content-type': 'application/json' },
          body,
          isBase64Encoded: false,
          pathParameters: id ? { id } : undefined,
          requestContext: { http: { method, path: '/orders' } },
        })
        const body = JSON.stringify({ customer, lines: [{ sku, quantity: 1, unitCents: 1 }] })
        const created = await handlers.create(event('POST', body), context())
        if (lone.test(customer) || lone.test(sku) || customer.includes('\u0000') || sku.includes('\u0000')) {
          expect(created.statusCode).toBe(400)
          seen.refused++
          return
        }
        expect(created.statusCode).toBe(201)
        seen.created++
        const { id } = JSON.parse(created.body ?? '') as { id: string }
        const read = await handlers.get(event('GET', undefined, id), context())
        expect(JSON.parse(read.body ?? '')).toMatchObject({ customer, lines: [{ sku }] })
      }),
      { numRuns: 200 },
    )
    // Both kinds were sent.
    expect(seen.created).toBeGreaterThan(0)
    expect(seen.refused).toBeGreaterThan(0)
  }, 60_000)
})
