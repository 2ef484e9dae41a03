// Callers driving the orders handlers while the database stops answering (SIGSTOP on the postmaster
// and every backend: what a Multi-AZ failover or a partition looks like from the client). Shared by
// the blackhole test and the `bench:chaos` scenario, so that both measure the same thing.
import { Client } from 'pg'
import type { ControlledServer } from './controlled-pg'
import type { HandlerWorld } from './handler-world'

export interface Outcome {
  at: number
  tookMs: number
  status: number
  code?: string
  retryAfter?: string
  /** `tenant/reference` of a write. */
  reference?: string
}

export interface BlackholeRun {
  outcomes: Outcome[]
  frozenAt: number
  thawedAt: number
  /** End of the first call started after the thaw that succeeded, if any. */
  backAt?: number
}

export interface BlackholePlan {
  handlers: HandlerWorld['handlers']
  server: ControlledServer
  tenants: string[]
  callers: number
  /** The invocation timeout each call's Lambda-like context counts down from. */
  invocationMs: number
  beforeMs: number
  freezeMs: number
  afterMs: number
}

export const succeeded = (o: Outcome) => o.status === 200 || o.status === 201

/** As Lambda gives: a context per invocation whose remaining time counts down from the timeout. */
const lambdaContext = (started: number, invocationMs: number) => ({
  awsRequestId: `bh-${started}`,
  functionName: 'blackhole',
  getRemainingTimeInMillis: () => Math.max(0, started + invocationMs - Date.now()),
})

/** Even callers write orders with a unique reference; odd callers list orders. */
export async function runBlackhole(plan: BlackholePlan): Promise<BlackholeRun> {
  const { handlers, server, tenants } = plan
  const outcomes: Outcome[] = []
  let running = true
  let seq = 0
  // References unique across runs on one server, so that a second run's writes never conflict.
  const run = Date.now().toString(36)
  const callers = Array.from({ length: plan.callers }, async (_, i) => {
    let n = 0
    while (running) {
      const tenant = tenants[(i + n++) % tenants.length] as string
      const started = Date.now()
      const headers = { 'x-tenant-id': tenant, 'content-type': 'application/json' }
      const reference = i % 2 === 0 ? `${tenant}-${run}-${seq++}` : undefined
      const context = lambdaContext(started, plan.invocationMs)
      const res = reference
        ? await handlers.create(
            {
              headers,
              body: JSON.stringify({
                customer: `caller ${i}`,
                reference,
                lines: [{ sku: 'S', quantity: 1, unitCents: 100 }],
              }),
              requestContext: {},
            },
            context,
          )
        : await handlers.list({ headers, requestContext: {} }, context)
      const status = res.statusCode ?? 0
      outcomes.push({
        at: started,
        tookMs: Date.now() - started,
        status,
        code: status >= 400 ? JSON.parse(res.body ?? '{}').error?.code : undefined,
        retryAfter: (res.headers as Record<string, string> | undefined)?.['retry-after'],
        reference: reference ? `${tenant}/${reference}` : undefined,
      })
      // A caller told to retry later waits a little, as a client honouring Retry-After would.
      if (status >= 500) await new Promise((r) => setTimeout(r, 50))
    }
  })

  await new Promise((r) => setTimeout(r, plan.beforeMs))
  await server.freeze()
  const frozenAt = Date.now()
  await new Promise((r) => setTimeout(r, plan.freezeMs))
  await server.thaw()
  const thawedAt = Date.now()
  await new Promise((r) => setTimeout(r, plan.afterMs))
  running = false
  await Promise.all(callers)

  const firstBack = outcomes.filter((o) => succeeded(o) && o.at >= thawedAt).sort((a, b) => a.at - b.at)[0]
  const backAt = firstBack ? firstBack.at + firstBack.tookMs : undefined
  return { outcomes, frozenAt, thawedAt, backAt }
}

/** How many rows each `tenant/reference` has on the server. */
export async function committedReferences(url: string, tenants: string[]): Promise<Map<string, number>> {
  const admin = new Client({ connectionString: url })
  await admin.connect()
  try {
    const count = new Map<string, number>()
    for (const t of tenants) {
      const { rows } = await admin.query<{ reference: string }>(
        `SELECT reference FROM tenant_${t}.orders WHERE reference IS NOT NULL`,
      )
      for (const r of rows) count.set(`${t}/${r.reference}`, (count.get(`${t}/${r.reference}`) ?? 0) + 1)
    }
    return count
  } finally {
    await admin.end()
  }
}
