// bench:scale-ops, the admin path: provisioning tenants through POST /admin/tenants, and walking
// GET /admin/tenants page by page. Both call the real handlers (functions/admin/handlers.ts) with
// API Gateway-shaped events and the admin key, in this process, as one admin environment would be
// invoked; the functions' modules are loaded by the caller once the environment is set.
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda'
import { progress } from './progress'
import { summarize } from './timing'

type Handler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyStructuredResultV2>
export interface AdminHandlers {
  create: Handler
  list: Handler
}

const context = {
  awsRequestId: 'bench',
  functionName: 'admin',
  // As the admin functions' configured timeout (serverless.yml: 29 s).
  getRemainingTimeInMillis: () => 29_000,
} as unknown as Context

const event = (key: string, method: string, query?: Record<string, string>, body?: unknown) =>
  ({
    headers: { 'x-admin-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    isBase64Encoded: false,
    queryStringParameters: query,
    requestContext: { http: { method, path: '/admin/tenants' } },
  }) as unknown as APIGatewayProxyEventV2

const answer = (res: APIGatewayProxyStructuredResultV2) => ({
  status: res.statusCode ?? 0,
  body: JSON.parse(String(res.body)) as Record<string, unknown>,
})

export interface Provisioning {
  tenants: number
  concurrency: number
  seconds: number
  tenantsPerSecond: number
  /** Latency of one POST, in ms. */
  p50ms: number
  p99ms: number
}

/**
 * POST /admin/tenants for each id, `concurrency` calls in flight at once. Any answer but 201 stops
 * the run: the figures are only good if every tenant was made.
 */
export async function provisionAll(
  handlers: AdminHandlers,
  key: string,
  ids: string[],
  concurrency: number,
): Promise<Provisioning> {
  const latencies: number[] = []
  let next = 0
  const started = performance.now()
  const worker = async () => {
    for (let i = next++; i < ids.length; i = next++) {
      const t0 = performance.now()
      const res = answer(await handlers.create(event(key, 'POST', undefined, { id: ids[i] }), context))
      latencies.push(performance.now() - t0)
      if (res.status !== 201)
        throw new Error(`POST /admin/tenants ${ids[i]}: ${res.status} ${JSON.stringify(res.body)}`)
      if (latencies.length % 250 === 0) {
        const s = (performance.now() - started) / 1000
        progress(
          `  ${latencies.length} of ${ids.length} provisioned, ${(latencies.length / s).toFixed(1)} tenants/s`,
        )
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const seconds = (performance.now() - started) / 1000
  const s = summarize(latencies)
  return {
    tenants: ids.length,
    concurrency,
    seconds: +seconds.toFixed(2),
    tenantsPerSecond: +(ids.length / seconds).toFixed(1),
    p50ms: +s.median.toFixed(1),
    p99ms: +s.p99.toFixed(1),
  }
}

export interface Walk {
  limit: number | 'default'
  pages: number
  largestPage: number
  /** Every tenant in the catalog appeared exactly once, and no other id. */
  eachOnce: boolean
  p50ms: number
  p99ms: number
  totalMs: number
}

/** GET /admin/tenants from the first page to the last (`nextCursor` null), at `limit` or the default. */
export async function walkList(
  handlers: AdminHandlers,
  key: string,
  ids: string[],
  limit?: number,
): Promise<Walk> {
  const seen = new Map<string, number>()
  const times: number[] = []
  let largestPage = 0
  let cursor: string | null = null
  do {
    const query: Record<string, string> = {
      ...(limit === undefined ? {} : { limit: String(limit) }),
      ...(cursor === null ? {} : { cursor }),
    }
    const t0 = performance.now()
    const res = answer(await handlers.list(event(key, 'GET', query), context))
    times.push(performance.now() - t0)
    if (res.status !== 200) throw new Error(`GET /admin/tenants: ${res.status} ${JSON.stringify(res.body)}`)
    const items = res.body.items as Array<{ id: string }>
    largestPage = Math.max(largestPage, items.length)
    for (const { id } of items) seen.set(id, (seen.get(id) ?? 0) + 1)
    cursor = res.body.nextCursor as string | null
    // A cursor that never ends would loop forever: no walk needs more pages than there are tenants.
    if (times.length > ids.length + 1) throw new Error('GET /admin/tenants: more pages than tenants')
  } while (cursor !== null)
  const s = summarize(times)
  return {
    limit: limit ?? 'default',
    pages: times.length,
    largestPage,
    eachOnce: seen.size === ids.length && ids.every((id) => seen.get(id) === 1),
    p50ms: +s.median.toFixed(2),
    p99ms: +s.p99.toFixed(2),
    totalMs: +times.reduce((a, b) => a + b, 0).toFixed(1),
  }
}

/** What a caller asking for more than a page may hold gets: its status, error code and row count. */
export async function askTooMany(handlers: AdminHandlers, key: string, limit: number) {
  const res = answer(await handlers.list(event(key, 'GET', { limit: String(limit) }), context))
  const items = res.body.items as unknown[] | undefined
  const error = res.body.error as { code?: string } | undefined
  return { limit, status: res.status, code: error?.code ?? null, rows: items?.length ?? 0 }
}
