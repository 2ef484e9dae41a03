// A tenant's revenue in cents passes 2^53 (each order may total 10^15 cents): /orders/stats and
// /orders/customers answer the sum exactly, as JSON digits, not a JavaScript number rounded to the
// nearest double. Below 2^53 they stay plain numbers.
import { uniqueTenant, withAdmin } from '../../../support/db'
import {
  type Handler,
  lambdaContext,
  type OrdersInProcess,
  ordersInProcess,
} from '../../../support/orders-in-process'

let world: OrdersInProcess
let stats: Handler
let customers: Handler
const [big, small] = [uniqueTenant('sum'), uniqueTenant('sum')]

beforeAll(async () => {
  world = await ordersInProcess([big, small])
  ;({ stats, customers } = world.handlers)
  // Nine orders of 10^15 cents and one of 7,199,254,740,995: 2^53 + 3 in all, which a double
  // cannot hold (it rounds to 2^53 + 4).
  await withAdmin((c) =>
    c.query(
      `INSERT INTO tenant_${big}.orders (customer, total_cents)
         SELECT 'c1', 1000000000000000 FROM generate_series(1, 9)
         UNION ALL SELECT 'c1', 7199254740995;
       INSERT INTO tenant_${small}.orders (customer, total_cents) VALUES ('c1', 250), ('c2', 5)`,
    ),
  )
}, 60_000)

afterAll(() => world?.end())

const call = async (handler: Handler, tenant: string) => {
  const res = await handler(
    {
      headers: { 'x-tenant-id': tenant },
      requestContext: { http: { method: 'GET', path: '/orders/stats' } },
    },
    lambdaContext(),
  )
  expect(res.statusCode).toBe(200)
  return res.body as string
}

describe('Behaviour: sums of cents past 2^53', () => {
  it('/orders/stats answers the revenue exactly', async () => {
    const body = await call(stats, big)
    expect(body).toContain('"revenueCents":9007199254740995')
    expect(JSON.parse(body)).toMatchObject({ orders: 10 })
  })

  it('/orders/customers answers the spend exactly', async () => {
    const body = await call(customers, big)
    expect(body).toContain('"spentCents":9007199254740995')
  })

  it('smaller sums stay plain numbers', async () => {
    expect(JSON.parse(await call(stats, small))).toMatchObject({ orders: 2, revenueCents: 255 })
    expect(JSON.parse(await call(customers, small))).toEqual({
      items: [
        { customer: 'c1', orders: 1, spentCents: 250 },
        { customer: 'c2', orders: 1, spentCents: 5 },
      ],
    })
  })
})
