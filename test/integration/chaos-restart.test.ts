// Chaos: the database stops for 3 s under load and comes back. Callers get typed errors that map to
// 503 with Retry-After while it is down, the registry recovers on its own, nothing crashes or leaks.
import { Client } from 'pg'
import { TenantPools, toHttp } from '../../lib'
import { type ControlledServer, controlledServer } from '../support/controlled-pg'
import { memoryLog } from '../support/memory-log'

interface Outcome {
  at: number
  ok: boolean
  tookMs: number
  status?: number
  retryAfter?: string
}

describe('Chaos: a database restart under load', () => {
  let server: ControlledServer
  let url: string

  beforeAll(async () => {
    server = await controlledServer()
    url = server.url
    const admin = new Client({ connectionString: url })
    await admin.connect()
    for (let t = 0; t < 10; t++) {
      await admin.query(`CREATE SCHEMA IF NOT EXISTS tenant_c${t}`)
      await admin.query(`CREATE TABLE IF NOT EXISTS tenant_c${t}.whoami AS SELECT 'c${t}'::text AS tenant`)
      await admin.query(`CREATE TABLE IF NOT EXISTS tenant_c${t}.writes (id text PRIMARY KEY)`)
    }
    await admin.end()
  }, 60_000)

  afterAll(() => server.quit())

  it('answers 503 with Retry-After while it is down, recovers by itself, and leaks nothing', async () => {
    // Prepare: 20 callers over 10 tenants
    const { log } = memoryLog()
    const budget = 8
    const pools = new TenantPools({
      connectionString: url,
      budget,
      maxPerPool: 2,
      connectTimeoutMs: 1_000,
      logger: log,
    })
    const outcomes: Outcome[] = []
    const acknowledged: Array<[string, string]> = []
    const failedWrites: Array<[string, string]> = []
    let running = true
    let seq = 0
    const callers = Array.from({ length: 20 }, async (_, i) => {
      while (running) {
        const started = Date.now()
        const tenant = `c${(i + outcomes.length) % 10}`
        // Every other call writes: an acknowledged write must survive the restart.
        const write = i % 2 === 0 ? `w${i}-${seq++}` : undefined
        try {
          if (write) {
            await pools.transaction(tenant, (c) => c.query('INSERT INTO writes (id) VALUES ($1)', [write]))
            acknowledged.push([tenant, write])
          } else {
            const { rows } = await pools.query<{ tenant: string }>(tenant, 'SELECT tenant FROM whoami')
            expect(rows[0]?.tenant).toBe(tenant)
          }
          outcomes.push({ at: started, ok: true, tookMs: Date.now() - started })
        } catch (err) {
          if (write) failedWrites.push([tenant, write])
          const answer = toHttp(err)
          outcomes.push({
            at: started,
            ok: false,
            tookMs: Date.now() - started,
            status: answer.status,
            retryAfter: answer.headers['retry-after'],
          })
          await new Promise((r) => setTimeout(r, 50))
        }
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

    // Assess: failures only around the outage, every one a 503 with Retry-After, none slow
    const failures = outcomes.filter((o) => !o.ok)
    expect(outcomes.filter((o) => o.ok && o.at < downAt).length).toBeGreaterThan(100)
    expect(failures.length).toBeGreaterThan(0)
    expect(failures.filter((f) => f.status !== 503 || f.retryAfter !== '1')).toEqual([])
    // Bounded by the connect timeout (1 s), with room for a noisy machine; never a hang.
    expect(Math.max(...failures.map((f) => f.tookMs))).toBeLessThan(5_000)
    const firstSuccessAfter = outcomes.filter((o) => o.ok && o.at >= upAt).sort((a, b) => a.at - b.at)[0]
    expect(firstSuccessAfter).toBeDefined()
    const recoveryMs = (firstSuccessAfter?.at ?? 0) + (firstSuccessAfter?.tookMs ?? 0) - upAt
    console.log(
      `restart: ${outcomes.length} calls, ${failures.length} failed (all 503), ` +
        `slowest failure ${Math.max(...failures.map((f) => f.tookMs))} ms, first success ${recoveryMs} ms after the server was back`,
    )
    // The last second is all successes: recovered, and stayed so.
    const lastSecond = outcomes.filter((o) => o.at > Date.now() - 1_000)
    expect(lastSecond.length).toBeGreaterThan(0)
    expect(lastSecond.every((o) => o.ok)).toBe(true)

    // Nothing acknowledged was lost; failed writes left nothing behind (a commit cut off between
    // its flush and its answer would show up here, and is reported rather than hidden)
    const present = new Set<string>()
    const admin = new Client({ connectionString: url })
    await admin.connect()
    for (let t = 0; t < 10; t++) {
      const { rows } = await admin.query<{ id: string }>(`SELECT id FROM tenant_c${t}.writes`)
      for (const r of rows) present.add(`c${t}/${r.id}`)
    }
    await admin.end()
    expect(acknowledged.length).toBeGreaterThan(100)
    expect(acknowledged.filter(([t, id]) => !present.has(`${t}/${id}`))).toEqual([])
    const leftBehind = failedWrites.filter(([t, id]) => present.has(`${t}/${id}`))
    console.log(
      `writes: ${acknowledged.length} acknowledged, all present; ${failedWrites.length} failed, ${leftBehind.length} of them present`,
    )

    // Nothing leaked: no caller waiting, every pool within bounds, the budget accounted for
    const stats = pools.stats()
    expect(stats.totals.waiting).toBe(0)
    expect(stats.pools.every((p) => p.total <= 2 && p.active === 0)).toBe(true)
    expect(stats.budget.used).toBeLessThanOrEqual(budget)
    expect(stats.budget.waiting).toBe(0)
    await pools.end()
    expect(pools.stats().budget.used).toBe(0)
  }, 60_000)
})
