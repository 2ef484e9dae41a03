// Clients writing orders through the orders API's `create` handler, invoked in-process as Lambda
// would invoke it, each write with a reference of its own: what a busy tenant looks like while it is
// moved. Every answer is kept, with when the write was sent and when it was answered.
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import { sleep } from './db'

export type Handler = (event: unknown, context: unknown) => Promise<APIGatewayProxyStructuredResultV2>

/** One write and its answer. Times are Date.now() milliseconds. */
export interface Write {
  writer: number
  reference: string
  startedAt: number
  answeredAt: number
  /** The HTTP status; 0 if the handler threw instead of answering (it never should). */
  status: number
  code?: string
  retryAfter?: string
}

export interface WritersPlan {
  create: Handler
  tenantId: string
  writers: number
  /** Makes the references of this run unique on the tenant (the seeded rows are `r<n>`). */
  tag: string
  /** Pause after a refused write: short, so that the refusals measure the pause finely. */
  backoffMs?: number
  /** Pause after an acknowledged write (0: write again at once). */
  thinkMs?: number
}

const defaults = { backoffMs: 25, thinkMs: 0 }
// serverless.yml's function timeout: each invocation's remaining time counts down from it.
const INVOCATION_MS = 29_000

export const acknowledged = (w: Write): boolean => w.status === 201
/** Refused by a move, as the API promises: 503 TENANT_MOVING with Retry-After. */
export const refusedForMove = (w: Write): boolean =>
  w.status === 503 && w.code === 'TENANT_MOVING' && w.retryAfter !== undefined

/** Starts the writers; `stop()` resolves with every write once they have all finished. */
export function startWriters(plan: WritersPlan): { writes: Write[]; stop: () => Promise<Write[]> } {
  // Merged with ??: a plan may pass a field as undefined.
  const o = {
    ...plan,
    backoffMs: plan.backoffMs ?? defaults.backoffMs,
    thinkMs: plan.thinkMs ?? defaults.thinkMs,
  }
  const writes: Write[] = []
  let running = true
  const loops = Array.from({ length: o.writers }, async (_, writer) => {
    for (let seq = 0; running; seq++) {
      const w = await writeOnce(o, writer, `${o.tag}-${writer}-${seq}`)
      writes.push(w)
      const pause = acknowledged(w) ? o.thinkMs : o.backoffMs
      if (pause > 0) await sleep(pause)
    }
  })
  return {
    writes,
    stop: async () => {
      running = false
      await Promise.all(loops)
      return writes
    },
  }
}

async function writeOnce(o: WritersPlan, writer: number, reference: string): Promise<Write> {
  const startedAt = Date.now()
  const event = {
    headers: { 'x-tenant-id': o.tenantId, 'content-type': 'application/json' },
    body: JSON.stringify({
      customer: `writer ${writer}`,
      reference,
      lines: [{ sku: `sku-${writer}`, quantity: 1, unitCents: 100 }],
    }),
    requestContext: {},
  }
  // A context of its own per invocation, as Lambda gives: the middleware puts the tenant's db on it.
  const context = {
    awsRequestId: reference,
    functionName: 'orders-create',
    getRemainingTimeInMillis: () => Math.max(0, startedAt + INVOCATION_MS - Date.now()),
  }
  try {
    const res = await o.create(event, context)
    const status = res.statusCode ?? 0
    const headers = (res.headers ?? {}) as Record<string, string | number | boolean>
    return {
      writer,
      reference,
      startedAt,
      answeredAt: Date.now(),
      status,
      code: status >= 400 ? codeOf(res.body) : undefined,
      retryAfter: headers['retry-after'] === undefined ? undefined : String(headers['retry-after']),
    }
  } catch (err) {
    // Recorded, not thrown: the run goes on and the check reports it.
    return { writer, reference, startedAt, answeredAt: Date.now(), status: 0, code: `THROWN ${err}` }
  }
}

const codeOf = (body: string | undefined): string | undefined => {
  try {
    return (JSON.parse(body ?? '{}') as { error?: { code?: string } }).error?.code
  } catch {
    return 'UNPARSABLE_BODY'
  }
}
