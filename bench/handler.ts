// Part of npm run bench: a warm handler invocation as Lambda makes it, against a raw pg.Pool handler
// doing the same work, interleaved call by call in one process on one server. Ours is the deployed
// GET /orders/{id} (middy, the tenant from the JWT claim, the catalog, the tenant's database, its
// two statements at once, the JSON answer), bundled alone as serverless.yml bundles each function:
// the set-up (migrations, provisioning, the order) runs from a bundle of its own, so the function's
// copy of pg and of the library has run only what the function runs. The raw one runs the same two
// statements through a bare pg.Pool (max 2) on the tenant's schema, with the app's own work (the id's
// check, the answer's shape) as ours does it, and answers the same bytes. Powertools' log and metric
// lines are off on our side (POWERTOOLS_LOG_LEVEL=SILENT, POWERTOOLS_METRICS_DISABLED): the raw
// handler writes none either. Target: median ≤ 1.10×.
//
// A third run, the same two statements through pools.query with no middleware, shows what the
// library's own path costs against the raw pool's, and so what the handler's layers add. It has a
// registry of its own: sharing the handler's, it kept the handler's two backends busy two calls in
// three where the raw pool's idled two in three, and the handler measured about 5 % faster than it
// is (docs/benchmarks.md, "Warm handler").
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import { Pool } from 'pg'
import type { TenantPools } from '../lib'
// @ts-expect-error: an ESM helper without type declarations, shared with the jest setup
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.mjs'
import { bundled } from './bundled-handlers'
import { progress } from './progress'
import { type Summary, summarize, time } from './timing'

const CALLS = Number(process.env.BENCH_HANDLER_CALLS ?? 5_000)
const WARMUP = 500
const TARGET = 1.1
const TENANT = 'acme'

type Handler = (event: unknown, context: unknown) => Promise<APIGatewayProxyStructuredResultV2>
// The set-up, and the app's own work, which the raw handler does too: the id's check and the
// answer's shape.
interface SetUp {
  create: Handler
  validate(schema: unknown, value: unknown, what: string): string
  orderId(): unknown
  toOrder(row: unknown): Record<string, unknown>
  jsonResponse(status: number, body: unknown): APIGatewayProxyStructuredResultV2
  migrateMaster(pools: TenantPools): Promise<unknown>
  provisionTenant(pools: TenantPools, tenantId: string): Promise<unknown>
  getTenantPools(): TenantPools
  resetTenantPools(): Promise<void>
}
// The GET /orders/{id} function, as deployed; and the registry class, for the third run's own.
interface Deployed {
  get: Handler
  resetTenantPools(): Promise<void>
  TenantPools: new (options: Record<string, unknown>) => TenantPools
  optionsFromEnv(): Record<string, unknown>
}

const COLUMNS = 'id, reference, customer, status, total_cents, version, created_at, updated_at'

// As API Gateway's HTTP API sends it with a JWT authorizer, and as Lambda's context answers.
const eventFor = (method: string, path: string, extra: Record<string, unknown> = {}) => ({
  version: '2.0',
  rawPath: path,
  headers: { 'content-type': 'application/json' },
  requestContext: {
    http: { method, path },
    requestId: 'bench',
    authorizer: { jwt: { claims: { tenant_id: TENANT }, scopes: null } },
  },
  ...extra,
})
const context = () => ({
  awsRequestId: 'bench',
  functionName: 'tenant-pools-bench-ordersGet',
  getRemainingTimeInMillis: () => 29_000,
})

async function main(): Promise<void> {
  progress(process.env.DATABASE_URL ? 'using DATABASE_URL' : 'starting an embedded PostgreSQL')
  const server = process.env.DATABASE_URL
    ? undefined
    : await startEmbeddedPostgres({ database: 'tenant_pools_bench_handler' })
  const url: string = process.env.DATABASE_URL ?? server.url
  Object.assign(process.env, {
    DATABASE_URL: url,
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
    TENANT_POOLS_APP_NAME_PREFIX: 'bench-handler',
  })
  let raw: Pool | undefined
  let setUp: SetUp | undefined
  let fn: Deployed | undefined
  let own: TenantPools | undefined
  try {
    progress('bundling the set-up and the function, provisioning a tenant')
    setUp = await bundled<SetUp>([
      "export { create } from './functions/http/orders/handlers'",
      "export { migrateMaster, provisionTenant } from './functions/admin/provision'",
      "export { getTenantPools, resetTenantPools, jsonResponse } from './lib'",
      "export { validate } from './functions/shared/validate'",
      "export { orderId } from './functions/http/orders/schema'",
      "export { toOrder } from './functions/http/orders/repo'",
    ])
    fn = await bundled<Deployed>([
      "export { get } from './functions/http/orders/handlers'",
      "export { resetTenantPools, TenantPools, optionsFromEnv } from './lib'",
    ])
    const pools = setUp.getTenantPools()
    await setUp.migrateMaster(pools)
    await setUp.provisionTenant(pools, TENANT)
    const created = await setUp.create(
      eventFor('POST', '/orders', {
        body: JSON.stringify({ customer: 'bench', lines: [{ sku: 'A-1', quantity: 2, unitCents: 500 }] }),
      }),
      context(),
    )
    if (created.statusCode !== 201) throw new Error(`creating the order answered ${created.statusCode}`)
    const { id } = JSON.parse(created.body as string) as { id: string }
    // The tenant's schema set at connection start, as cheaply as a bare pool can have it.
    const rawPool = new Pool({
      connectionString: url,
      max: 2,
      options: `-c search_path=${pools.schemaOf(TENANT)}`,
    })
    raw = rawPool

    const app = setUp
    const rawHandler = async (event: { pathParameters: { id: string } }) => {
      const orderId = app.validate(app.orderId(), event.pathParameters.id, 'order id')
      const [order, lines] = await Promise.all([
        rawPool.query(`SELECT ${COLUMNS} FROM orders WHERE id = $1 AND deleted_at IS NULL`, [orderId]),
        rawPool.query(
          'SELECT sku, quantity, unit_cents FROM order_lines WHERE order_id = $1 ORDER BY line_no',
          [orderId],
        ),
      ])
      const row = order.rows[0]
      if (!row) return { statusCode: 404, body: '' }
      return app.jsonResponse(200, {
        ...app.toOrder(row),
        lines: lines.rows.map((l) => ({ sku: l.sku, quantity: l.quantity, unitCents: Number(l.unit_cents) })),
      })
    }
    const get = eventFor('GET', `/orders/${id}`, { pathParameters: { id } })
    const handler = fn.get
    const ours = async () => {
      const answer = await handler(get, context())
      if (answer.statusCode !== 200) throw new Error(`GET /orders/{id} answered ${answer.statusCode}`)
    }
    const theirs = async () => {
      const answer = await rawHandler({ pathParameters: { id } })
      if (answer.statusCode !== 200) throw new Error(`the raw handler answered ${answer.statusCode}`)
    }
    // The same work: both answer the same bytes.
    const [mine, bare] = [await handler(get, context()), await rawHandler({ pathParameters: { id } })]
    if (mine.body !== bare.body)
      throw new Error(`the handlers answer differently:\n${mine.body}\n${bare.body}`)

    // The library alone, for the reader: the same two statements through pools.query of a registry
    // of its own, a new invocation each time (so each connection settles as after a freeze), no
    // middleware.
    const alone = new fn.TenantPools(fn.optionsFromEnv())
    own = alone
    const core = async () => {
      alone.invocationStarted()
      await Promise.all([
        alone.query(TENANT, `SELECT ${COLUMNS} FROM orders WHERE id = $1 AND deleted_at IS NULL`, [id]),
        alone.query(
          TENANT,
          'SELECT sku, quantity, unit_cents FROM order_lines WHERE order_id = $1 ORDER BY line_no',
          [id],
        ),
      ])
    }
    const runs = [theirs, ours, core]
    progress(`${WARMUP} untimed invocations of each, then ${CALLS} of each, interleaved`)
    for (let i = 0; i < WARMUP; i++) for (const run of runs) await run()
    const samples: number[][] = runs.map(() => [])
    for (let i = 0; i < CALLS; i++) {
      // Which goes first rotates, so the machine's noise falls on all alike.
      for (let j = 0; j < runs.length; j++) {
        const k = (i + j) % runs.length
        samples[k]?.push(await time(runs[k] as () => Promise<void>))
      }
    }
    const [r, o, c] = samples.map(summarize) as [Summary, Summary, Summary]
    const ratio = o.median / r.median
    const f = (ms: number) => ms.toFixed(3)
    console.table({
      'GET /orders/{id} handler, warm (ms)': { median: f(o.median), p99: f(o.p99) },
      'raw pg.Pool handler, warm (ms)': { median: f(r.median), p99: f(r.p99) },
      [`ratio (target ≤ ${TARGET}×)`]: {
        median: `${ratio.toFixed(3)}× ${ratio <= TARGET ? 'met' : 'NOT met'}`,
        p99: `${(o.p99 / r.p99).toFixed(3)}×`,
      },
      'the two statements alone, pools.query (ms)': { median: f(c.median), p99: f(c.p99) },
      'pools.query against raw': {
        median: `${(c.median / r.median).toFixed(3)}×`,
        p99: `${(c.p99 / r.p99).toFixed(3)}×`,
      },
    })
    const dir = join(__dirname, 'results')
    mkdirSync(dir, { recursive: true })
    const file = join(dir, `handler-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
    writeFileSync(
      file,
      JSON.stringify({ calls: CALLS, ours: o, raw: r, poolsQuery: c, ratio, target: TARGET }, null, 2),
    )
    console.log(`wrote ${file}`)
  } finally {
    await raw?.end()
    await own?.end()
    await fn?.resetTenantPools()
    await setUp?.resetTenantPools()
    await server?.stop()
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
