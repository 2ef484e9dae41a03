// A create whose answer never came (lost, or 504 OUTCOME_UNKNOWN) is checked before it is sent
// again: GET /orders?reference=R answers the live order with that reference, or none. Sent again
// anyway, it is a 409 CONFLICT, never a second order.
import { uniqueTenant } from '../../../support/db'
import { lambdaContext, type OrdersInProcess, ordersInProcess } from '../../../support/orders-in-process'

let world: OrdersInProcess
const tenant = uniqueTenant('ref')

beforeAll(async () => {
  world = await ordersInProcess([tenant])
}, 60_000)

afterAll(() => world?.end())

interface Answer {
  status: number
  body: { id?: string; items?: Array<{ id: string; reference: string }>; error?: { code: string } }
}
const call = async (name: 'create' | 'list' | 'remove', event: object): Promise<Answer> => {
  const res = await world.handlers[name](
    { headers: { 'x-tenant-id': tenant, 'content-type': 'application/json' }, requestContext: {}, ...event },
    lambdaContext(),
  )
  return { status: res.statusCode as number, body: res.body ? JSON.parse(res.body) : {} }
}
const post = (reference: string) =>
  call('create', {
    body: JSON.stringify({ reference, customer: 'c1', lines: [{ sku: 'a', quantity: 1, unitCents: 5 }] }),
  })
const byReference = (reference: string) => call('list', { queryStringParameters: { reference } })

describe('Behaviour: GET /orders?reference=', () => {
  it('answers the order a create made, and a second create of it is a 409', async () => {
    // Prepare
    const first = await post('R-1')
    await post('R-2')

    // Act
    const found = await byReference('R-1')
    const again = await post('R-1')

    // Assess
    expect(first.status).toBe(201)
    expect(found).toMatchObject({ status: 200, body: { items: [{ id: first.body.id, reference: 'R-1' }] } })
    expect(found.body.items).toHaveLength(1)
    expect(again).toMatchObject({ status: 409, body: { error: { code: 'CONFLICT' } } })
    expect((await byReference('R-1')).body.items).toHaveLength(1)
  })

  it('answers none for a reference no live order has: unknown, or its order deleted', async () => {
    const made = await post('R-gone')
    expect((await call('remove', { pathParameters: { id: made.body.id } })).status).toBe(204)
    expect(await byReference('R-unknown')).toMatchObject({ status: 200, body: { items: [] } })
    expect(await byReference('R-gone')).toMatchObject({ status: 200, body: { items: [] } })
  })

  it.each([
    ['empty', ''],
    ['too long', 'r'.repeat(65)],
    ['with NUL', 'a\u0000b'],
    ['with a lone surrogate', 'a\ud800'],
  ])('refuses a reference that is %s with 400', async (_label, reference) => {
    expect(await byReference(reference)).toMatchObject({
      status: 400,
      body: { error: { code: 'VALIDATION_FAILED' } },
    })
  })
})
