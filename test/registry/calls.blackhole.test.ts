// A database that stops answering (SIGSTOP on the postmaster and every backend: what a Multi-AZ
// failover or a partition looks like from the client) under 10 callers over 5 tenants, through the
// HTTP handlers with a Lambda-like context whose remaining time counts down. Every call must end
// before its invocation would time out, with 503 or 504 and Retry-After; the first success follows
// the thaw; nothing leaks; no acknowledged write is lost and none is duplicated.
import { getTenantPools } from '../../lib'
import { committedReferences, runBlackhole, succeeded } from '../support/blackhole-load'
import type { ControlledServer } from '../support/controlled-pg'
import { figure } from '../support/figures'
import { expectNothingLeaked, type HandlerWorld, handlerWorld } from '../support/handler-world'

const TENANTS = Array.from({ length: 5 }, (_, t) => `b${t}`)
// The invocation timeout these handlers get; the middleware keeps its default 1 s margin to answer.
const INVOCATION_MS = 2_500
const CONNECT_TIMEOUT_MS = 1_000
let world: HandlerWorld
let server: ControlledServer

beforeAll(async () => {
  world = await handlerWorld(TENANTS, {
    TENANT_POOLS_BUDGET: '8',
    TENANT_POOLS_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
    TENANT_POOLS_VALIDATE_AFTER_IDLE_MS: '200',
    TENANT_POOLS_APP_NAME_PREFIX: 'blackhole',
    TENANT_CATALOG_TTL_MS: '500',
  })
  ;({ server } = world)
}, 60_000)

afterAll(async () => {
  await server.thaw()
  await world.end()
})

describe('Blackhole: the database stops answering under load', () => {
  it('ends every call before its invocation deadline, recovers after the thaw, loses and duplicates nothing', async () => {
    // Act: 10 callers over 5 tenants; 1 s of traffic, the server frozen for longer than an
    // invocation, then 3 s more
    const { outcomes, frozenAt, thawedAt, backAt } = await runBlackhole({
      handlers: world.handlers,
      server,
      tenants: TENANTS,
      callers: 10,
      invocationMs: INVOCATION_MS,
      beforeMs: 1_000,
      freezeMs: 4_000,
      afterMs: 3_000,
    })

    // Assess: every call ended before its invocation's timeout; failures are 503/504 with Retry-After
    const failures = outcomes.filter((o) => !succeeded(o))
    expect(outcomes.filter((o) => succeeded(o) && o.at + o.tookMs < frozenAt).length).toBeGreaterThan(10)
    expect(failures.length).toBeGreaterThan(0)
    expect(failures.filter((f) => ![503, 504].includes(f.status) || f.retryAfter !== '1')).toEqual([])
    const slowest = Math.max(...outcomes.map((o) => o.tookMs))
    expect(outcomes.filter((o) => o.tookMs >= INVOCATION_MS)).toEqual([])
    // Recovery: a success after the thaw, and every call started after it succeeded
    expect(backAt).toBeDefined()
    const back = backAt ?? 0
    // Calls that raced the first success may still find the budget held by connect attempts the
    // freeze abandoned (each holds its slot until its late socket closes, at most a connect timeout):
    // counted and printed. Past one connect timeout after the first success, every call succeeds.
    const settling = outcomes.filter((o) => o.at > back && o.at <= back + CONNECT_TIMEOUT_MS && !succeeded(o))
    expect(outcomes.filter((o) => o.at > back + CONNECT_TIMEOUT_MS && !succeeded(o))).toEqual([])

    // Writes: every acknowledged one present; an ambiguous one (504 OUTCOME_UNKNOWN) present or
    // absent; a failure that said "not done" absent; none duplicated
    const count = await committedReferences(server.url, TENANTS)
    const writes = outcomes.filter((o) => o.reference !== undefined)
    const acknowledged = writes.filter(succeeded)
    expect(acknowledged.filter((w) => count.get(w.reference as string) !== 1)).toEqual([])
    expect([...count.values()].filter((n) => n > 1)).toEqual([])
    const notDone = writes.filter((w) => !succeeded(w) && w.code !== 'OUTCOME_UNKNOWN')
    expect(notDone.filter((w) => count.has(w.reference as string))).toEqual([])
    const ambiguous = writes.filter((w) => w.code === 'OUTCOME_UNKNOWN')
    figure(
      `blackhole via handlers: ${outcomes.length} calls, ${failures.length} failed ` +
        `(${failures.filter((f) => f.status === 503).length} × 503, ${failures.filter((f) => f.status === 504).length} × 504), ` +
        `slowest ${slowest} ms against an invocation of ${INVOCATION_MS} ms, first success ${back - thawedAt} ms ` +
        `after the thaw, ${settling.length} failed within a connect timeout of it; ${acknowledged.length} writes acknowledged and present, ${ambiguous.length} ambiguous ` +
        `(${ambiguous.filter((w) => count.has(w.reference as string)).length} of them committed)`,
    )

    // Nothing leaked: no caller waiting, every pool within bounds, no call in flight
    expectNothingLeaked(getTenantPools().stats(), 8)
  }, 60_000)
})
