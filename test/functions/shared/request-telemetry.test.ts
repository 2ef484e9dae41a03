// Lambda Managed Instances: several invocations at once in one thread. The runtime gives each its
// own InvokeStore context (emulated here as the RIC does it, with AWS_LAMBDA_MAX_CONCURRENCY set);
// every log line of a request must carry that request's id and tenant, never the other's. The same
// holds with no InvokeStore at all (a host that runs handlers concurrently in one thread, as a local
// server may): the keys travel with the request, not in a store.
import { InvokeStore, InvokeStoreBase } from '@aws/lambda-invoke-store'
import { getTenantPools } from '../../../lib'
import { type HandlerWorld, handlerWorld } from '../../support/handler-world'

const TENANTS = ['acme', 'globex']
let world: HandlerWorld

beforeAll(async () => {
  // As the RIC does before loading the handler: the store Powertools looks up on globalThis.
  await InvokeStore.getInstanceAsync()
  world = await handlerWorld(TENANTS, {
    AWS_LAMBDA_MAX_CONCURRENCY: '4',
    POWERTOOLS_METRICS_DISABLED: 'false',
    POWERTOOLS_LOG_LEVEL: 'INFO',
    TENANT_POOLS_APP_NAME_PREFIX: 'concurrent',
  })
}, 60_000)

afterAll(async () => {
  await world?.end()
})

type Invoke = (
  tenant: string,
  n: number,
  run: () => Promise<{ statusCode?: number }>,
) => Promise<{ statusCode?: number }>

// 20 requests at once, 10 per tenant; what they wrote to stdout.
async function concurrently(invoke: Invoke) {
  const lines: string[] = []
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk))
    return true
  })
  try {
    const one = (tenant: string, n: number) =>
      invoke(tenant, n, () =>
        world.handlers.list(
          { headers: { 'x-tenant-id': tenant }, requestContext: {} },
          {
            awsRequestId: `req-${tenant}-${n}`,
            functionName: 'ordersList',
            getRemainingTimeInMillis: () => 10_000,
          },
        ),
      )
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, n) => TENANTS.map((t) => one(t, n))).flat(),
    )
    expect(answers.map((a) => a.statusCode)).toEqual(Array(20).fill(200))
  } finally {
    spy.mockRestore()
  }
  return lines.flatMap((l) => l.split('\n')).filter((l) => l.startsWith('{'))
}

// Every 'request served' line names the tenant of its own request; each request publishes its own
// metrics, once, with its own checkout count.
function expectKeptApart(lines: string[], checkoutsBefore: number) {
  const served = lines
    .map((l) => JSON.parse(l) as { message?: string; tenantId?: string; function_request_id?: string })
    .filter((l) => l.message === 'request served')
  expect(served).toHaveLength(20)
  // One line per request: no request's keys stand in for another's
  expect(new Set(served.map((l) => l.function_request_id)).size).toBe(20)
  const mixed = served.filter((l) => !l.function_request_id?.startsWith(`req-${l.tenantId}-`))
  expect(mixed).toEqual([])
  const emf = lines
    .filter((l) => l.includes('"_aws"'))
    .map((l) => JSON.parse(l) as { Checkouts?: number; function_name?: string; ColdStart?: number })
    .filter((m) => m.ColdStart === undefined)
  expect(emf).toHaveLength(20)
  expect(emf.filter((m) => m.function_name !== 'ordersList')).toEqual([])
  // ... its own calls only (its list, and the catalog look-up if it made it): one or two each,
  // summing to what the environment did, never the environment's delta over the overlap
  expect(emf.filter((m) => m.Checkouts !== 1 && m.Checkouts !== 2)).toEqual([])
  const total = emf.reduce((n, m) => n + (m.Checkouts ?? 0), 0)
  expect(total).toBe(getTenantPools().stats().counters.checkouts - checkoutsBefore)
}

describe('Behaviour: concurrent invocations in one thread', () => {
  it('keeps each request’s log lines and metrics to its own request id and tenant', async () => {
    const store = await InvokeStore.getInstanceAsync()
    const checkoutsBefore = getTenantPools().stats().counters.checkouts
    // Act: each tenant's request runs in its own invocation context, all of them at once
    const lines = await concurrently((tenant, n, run) =>
      store.run({ [InvokeStoreBase.PROTECTED_KEYS.REQUEST_ID]: `req-${tenant}-${n}` }, run),
    )
    expectKeptApart(lines, checkoutsBefore)
  })

  it('keeps them apart without an InvokeStore too', async () => {
    const concurrency = process.env.AWS_LAMBDA_MAX_CONCURRENCY
    delete process.env.AWS_LAMBDA_MAX_CONCURRENCY
    try {
      const checkoutsBefore = getTenantPools().stats().counters.checkouts
      const lines = await concurrently((_tenant, _n, run) => run())
      expectKeptApart(lines, checkoutsBefore)
    } finally {
      process.env.AWS_LAMBDA_MAX_CONCURRENCY = concurrency
    }
  })
})
