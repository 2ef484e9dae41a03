// Chaos: the database stops for 3 s under load and comes back, with 20 callers over 10 tenants going
// through the HTTP handlers and their middleware. While it is down callers get a prompt 503 with
// Retry-After; the registry recovers on its own; nothing crashes, leaks or gets lost.
import { Client } from 'pg'
import { getTenantPools } from '../../lib'
import type { ControlledServer } from '../support/controlled-pg'
import { figure } from '../support/figures'
import { expectNothingLeaked, type HandlerWorld, handlerWorld } from '../support/handler-world'

interface Outcome {
  at: number
  tookMs: number
  status: number
  retryAfter?: string
  write: boolean
  code?: string
}

const TENANTS = Array.from({ length: 10 }, (_, t) => `c${t}`)
let world: HandlerWorld
let server: ControlledServer
let handlers: HandlerWorld['handlers']

beforeAll(async () => {
  world = await handlerWorld(TENANTS, {
    TENANT_POOLS_BUDGET: '8',
    TENANT_POOLS_CONNECT_TIMEOUT_MS: '1000',
    TENANT_POOLS_APP_NAME_PREFIX: 'chaos',
  })
  ;({ server, handlers } = world)
}, 60_000)

afterAll(async () => {
  await world.end()
})

// A context of its own per invocation, as Lambda gives: the middleware puts the tenant's db on it.
const context = () => ({
  awsRequestId: 'chaos',
  functionName: 'chaos',
  getRemainingTimeInMillis: () => 30_000,
})

describe('Chaos: a database restart under load, through the handlers', () => {
  it('answers 503 with Retry-After while it is down, recovers by itself, loses and leaks nothing', async () => {
    // Prepare: 20 callers over 10 tenants; even callers write, odd ones read
    const outcomes: Outcome[] = []
    const acknowledged: Array<[string, string]> = []
    let failedWrites = 0
    let running = true
    const callers = Array.from({ length: 20 }, async (_, i) => {
      let n = 0
      while (running) {
        const tenant = TENANTS[(i + n++) % TENANTS.length] as string
        const started = Date.now()
        const headers = { 'x-tenant-id': tenant, 'content-type': 'application/json' }
        const res =
          i % 2 === 0
            ? await handlers.create(
                {
                  headers,
                  body: JSON.stringify({
                    customer: `caller ${i}`,
                    lines: [{ sku: 'S', quantity: 1, unitCents: 100 }],
                  }),
                  requestContext: {},
                },
                context(),
              )
            : await handlers.list({ headers, requestContext: {} }, context())
        const status = res.statusCode ?? 0
        outcomes.push({
          at: started,
          tookMs: Date.now() - started,
          status,
          retryAfter: (res.headers as Record<string, string> | undefined)?.['retry-after'],
          write: i % 2 === 0,
          code: status >= 500 ? JSON.parse(res.body ?? '{}').error?.code : undefined,
        })
        if (status === 201) acknowledged.push([tenant, JSON.parse(res.body ?? '{}').id])
        else if (i % 2 === 0) failedWrites++
        if (status >= 500) await new Promise((r) => setTimeout(r, 50))
      }
    })

    // Act: 1.5 s of traffic, the server stopped for 3 s, then 3 s more
    await new Promise((r) => setTimeout(r, 1_500))
    await server.stop()
    const downAt = Date.now()
    await new Promise((r) => setTimeout(r, 3_000))
    await server.start()
    const upAt = Date.now()
    await new Promise((r) => setTimeout(r, 3_000))
    running = false
    await Promise.all(callers)

    // Assess: failures only as 503 with Retry-After, none slow, and recovery after the return
    const ok = (o: Outcome) => o.status === 200 || o.status === 201
    const failures = outcomes.filter((o) => !ok(o))
    // Traffic flowed before the stop (a count, not a rate: a busy machine serves fewer).
    expect(outcomes.filter((o) => ok(o) && o.at < downAt).length).toBeGreaterThan(10)
    expect(failures.length).toBeGreaterThan(0)
    // A 503, or for a write whose connection died with it in flight, 504 OUTCOME_UNKNOWN: it may
    // have committed. Either with Retry-After; never a 500.
    const unknown = failures.filter((f) => f.status === 504 && f.write && f.code === 'OUTCOME_UNKNOWN')
    expect(
      failures.filter((f) => f.retryAfter !== '1' || (f.status !== 503 && !unknown.includes(f))),
    ).toEqual([])
    // Bounded by the connect timeout (1 s), with room for a noisy machine; never a hang.
    const slowest = Math.max(...failures.map((f) => f.tookMs))
    expect(slowest).toBeLessThan(5_000)
    const firstBack = outcomes.filter((o) => ok(o) && o.at >= upAt).sort((a, b) => a.at - b.at)[0]
    expect(firstBack).toBeDefined()
    const recoveryMs = (firstBack?.at ?? 0) + (firstBack?.tookMs ?? 0) - upAt
    const lastSecond = outcomes.filter((o) => o.at > Date.now() - 1_000)
    expect(lastSecond.length).toBeGreaterThan(0)
    expect(lastSecond.every(ok)).toBe(true)

    // Every acknowledged write is there; failed writes left nothing behind
    const admin = new Client({ connectionString: server.url })
    await admin.connect()
    const present = new Set<string>()
    let total = 0
    for (const t of TENANTS) {
      const { rows } = await admin.query<{ id: string }>(`SELECT id FROM tenant_${t}.orders`)
      total += rows.length
      for (const r of rows) present.add(`${t}/${r.id}`)
    }
    await admin.end()
    expect(acknowledged.length).toBeGreaterThan(20)
    expect(acknowledged.filter(([t, id]) => !present.has(`${t}/${id}`))).toEqual([])
    // Beyond the acknowledged writes, only those answered OUTCOME_UNKNOWN may be there.
    expect(total).toBeGreaterThanOrEqual(acknowledged.length)
    expect(total - acknowledged.length).toBeLessThanOrEqual(unknown.length)
    figure(
      `restart via handlers: ${outcomes.length} calls, ${failures.length} answered 503, slowest ${slowest} ms, ` +
        `first success ${recoveryMs} ms after the server was back; ${acknowledged.length} writes acknowledged ` +
        `and present, ${failedWrites} failed, ${total - acknowledged.length} rows beyond the acknowledged`,
    )

    // Nothing leaked: no caller waiting, every pool within bounds
    expectNothingLeaked(getTenantPools().stats(), 8)
  }, 60_000)
})
