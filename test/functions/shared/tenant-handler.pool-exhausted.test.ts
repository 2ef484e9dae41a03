// POOL_EXHAUSTED over HTTP: a tenant whose one allowed connection is held (its statement waits on a
// lock) gets 503 with Retry-After for a second request, once the connect timeout has passed, while
// the first request completes when the lock goes.
import { Client } from 'pg'
import { type HandlerWorld, handlerWorld } from '../../support/handler-world'

let world: HandlerWorld

beforeAll(async () => {
  world = await handlerWorld(['acme'], {
    TENANT_POOLS_MAX_PER_POOL: '1',
    TENANT_POOLS_CONNECT_TIMEOUT_MS: '300',
  })
}, 60_000)
afterAll(async () => {
  await world?.end()
})

const list = (n: number) =>
  world.handlers.list(
    { headers: { 'x-tenant-id': 'acme' }, requestContext: {} },
    { awsRequestId: `req-${n}`, functionName: 'ordersList', getRemainingTimeInMillis: () => 20_000 },
  )

describe('HTTP: a tenant out of connections', () => {
  it('answers 503 POOL_EXHAUSTED with Retry-After, and the held request still succeeds', async () => {
    const locker = new Client({ connectionString: world.server.url })
    await locker.connect()
    try {
      await locker.query('BEGIN')
      await locker.query('LOCK TABLE tenant_acme.orders IN ACCESS EXCLUSIVE MODE')
      const first = list(1)
      // The first request holds the tenant's only connection, waiting on the lock: wait until it does.
      for (let i = 0; i < 200; i++) {
        const { rowCount } = await locker.query(
          `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%orders%'`,
        )
        if (rowCount) break
        await new Promise((r) => setTimeout(r, 10))
      }
      const second = await list(2)
      expect(second.statusCode).toBe(503)
      expect(JSON.parse(second.body as string).error.code).toBe('POOL_EXHAUSTED')
      expect(second.headers?.['retry-after']).toBe('1')
      await locker.query('COMMIT')
      expect((await first).statusCode).toBe(200)
    } finally {
      await locker.end()
    }
  })
})
