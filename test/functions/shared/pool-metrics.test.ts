// What a request's pool metrics say: its own calls' figures, and the environment's evictions and
// expiries each once, by the first request to end after them.
import { Metrics } from '@aws-lambda-powertools/metrics'
import type { Request } from '@middy/core'
import { poolMetrics } from '../../../functions/shared/pool-metrics'
import { RequestMetrics } from '../../../functions/shared/request-telemetry'
import { type CallMeasure, type Counters, newCallMeasure, type TenantPools } from '../../../lib'

// The registry's counters as this test sets them: poolMetrics reads nothing else of it.
let counters: Pick<Counters, 'scopesEvicted' | 'scopesExpired'>
const pools = () => ({ counters: () => counters }) as unknown as TenantPools

// What a request recorded: the metric names and values it would publish.
function recorded(metrics: RequestMetrics): Record<string, number> {
  const out: Record<string, number> = {}
  const sink = {
    addDimension: () => {},
    addMetric: (name: string, _unit: string, value: number) => {
      out[name] = value
    },
    publishStoredMetrics: () => {},
  }
  metrics.publishTo(sink as never, 'ordersGet')
  return out
}

function end(after: (request: Request) => void, dbMeasure?: CallMeasure): Record<string, number> {
  const metrics = new RequestMetrics()
  after({ context: { metrics, dbMeasure } } as unknown as Request)
  return recorded(metrics)
}

beforeEach(() => {
  counters = { scopesEvicted: 0, scopesExpired: 0 }
})

describe('poolMetrics', () => {
  it('reports the request’s own calls, with the mean wait per checkout', () => {
    const { after } = poolMetrics(pools)
    const measure = {
      ...newCallMeasure(),
      checkouts: 4,
      acquireWaitMs: 10,
      connectionsOpened: 1,
      connectionsReused: 3,
    }
    expect(end(after as (r: Request) => void, measure)).toEqual({
      ConnectionsOpened: 1,
      ConnectionsReused: 3,
      Checkouts: 4,
      AcquireWait: 2.5,
    })
  })

  it('reports zero checkouts for a request refused before any call', () => {
    const { onError } = poolMetrics(pools)
    expect(end(onError as (r: Request) => void)).toEqual({ Checkouts: 0 })
  })

  it('reports each eviction and expiry once, by the next request to end', () => {
    const { after } = poolMetrics(pools)
    const run = after as (r: Request) => void
    counters = { scopesEvicted: 3, scopesExpired: 1 }
    expect(end(run)).toMatchObject({ ScopesEvicted: 3, ScopesExpired: 1 })
    expect(end(run)).toEqual({ Checkouts: 0 })
    counters = { scopesEvicted: 5, scopesExpired: 1 }
    expect(end(run)).toEqual({ ScopesEvicted: 2, Checkouts: 0 })
  })

  it('counts from zero again when the registry was built anew', () => {
    const { after } = poolMetrics(pools)
    const run = after as (r: Request) => void
    counters = { scopesEvicted: 7, scopesExpired: 0 }
    end(run)
    counters = { scopesEvicted: 2, scopesExpired: 0 }
    expect(end(run)).toEqual({ ScopesEvicted: 2, Checkouts: 0 })
  })

  it('records nothing for a request without its metrics', () => {
    const { after } = poolMetrics(pools)
    counters = { scopesEvicted: 1, scopesExpired: 0 }
    expect(() => (after as (r: Request) => void)({ context: {} } as unknown as Request)).not.toThrow()
    // ... and leaves the eviction to a request that has them
    expect(end(after as (r: Request) => void)).toMatchObject({ ScopesEvicted: 1 })
  })
})

describe('RequestMetrics', () => {
  it('drops what is added while the metrics are off, and poolMetrics leaves the evictions for later', () => {
    const { after } = poolMetrics(pools)
    counters = { scopesEvicted: 2, scopesExpired: 0 }
    const off = new RequestMetrics(false)
    off.addMetric('Checkouts', 'Count', 1)
    ;(after as (r: Request) => void)({ context: { metrics: off } } as unknown as Request)
    expect(recorded(off)).toEqual({})
    expect(end(after as (r: Request) => void)).toMatchObject({ ScopesEvicted: 2 })
  })

  it('publishes nothing when nothing was recorded', () => {
    const published = jest.fn()
    new RequestMetrics().publishTo(
      { addDimension: jest.fn(), addMetric: jest.fn(), publishStoredMetrics: published } as never,
      'f',
    )
    expect(published).not.toHaveBeenCalled()
  })
})

describe('RequestMetrics on the module instance', () => {
  it('leaves nothing of a failed publication for the next request', () => {
    const metrics = new Metrics({ namespace: 'Test', serviceName: 'test' })
    const bad = new RequestMetrics()
    bad.addMetric('Checkouts', 'Count', 1)
    // A value Powertools refuses: the publication fails half-way
    bad.addMetric('', 'Count', 1)
    expect(() => bad.publishTo(metrics, 'f')).toThrow()
    expect(metrics.hasStoredMetrics()).toBe(false)
  })
})
