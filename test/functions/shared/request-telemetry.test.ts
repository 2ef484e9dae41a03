// Lambda Managed Instances: several invocations at once in one thread. The runtime gives each its
// own InvokeStore context (emulated here as the RIC does it, with AWS_LAMBDA_MAX_CONCURRENCY set);
// every log line of a request must carry that request's id and tenant, never the other's.
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

describe('Behaviour: concurrent invocations in one thread', () => {
  it('keeps each request’s log lines to its own request id and tenant', async () => {
    const store = await InvokeStore.getInstanceAsync()
    const checkoutsBefore = getTenantPools().stats().counters.checkouts
    const lines: string[] = []
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk))
      return true
    })
    try {
      // Act: each tenant's request runs in its own invocation context, all of them at once
      const invoke = (tenant: string, n: number) =>
        store.run({ [InvokeStoreBase.PROTECTED_KEYS.REQUEST_ID]: `req-${tenant}-${n}` }, () =>
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
        Array.from({ length: 10 }, (_, n) => TENANTS.map((t) => invoke(t, n))).flat(),
      )
      expect(answers.map((a) => a.statusCode)).toEqual(Array(20).fill(200))
    } finally {
      spy.mockRestore()
    }

    // Assess: every 'request served' line names the tenant of its own request
    const served = lines
      .flatMap((l) => l.split('\n'))
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { message: string; tenantId?: string; function_request_id?: string })
      .filter((l) => l.message === 'request served')
    expect(served).toHaveLength(20)
    const mixed = served.filter((l) => !l.function_request_id?.startsWith(`req-${l.tenantId}-`))
    expect(mixed).toEqual([])
    // Metrics: each request publishes its own buffer, once, with its own checkout count
    const emf = lines
      .flatMap((l) => l.split('\n'))
      .filter((l) => l.includes('"_aws"'))
      .map((l) => JSON.parse(l) as { Checkouts?: number })
    expect(emf).toHaveLength(20)
    // ... its own calls only (its list, and the catalog look-up if it made it): one or two each,
    // summing to what the environment did, never the environment's delta over the overlap
    expect(emf.filter((m) => m.Checkouts !== 1 && m.Checkouts !== 2)).toEqual([])
    const total = emf.reduce((n, m) => n + (m.Checkouts ?? 0), 0)
    expect(total).toBe(getTenantPools().stats().counters.checkouts - checkoutsBefore)
  })
})
