import { ExpiringCache } from '../../lib/credentials/cache'

// A fetch the test settles when it chooses, counting how often it was started.
function fetches() {
  const started: Array<{ resolve: (v: string) => void; reject: (e: Error) => void }> = []
  const fetch = () =>
    new Promise<string>((resolve, reject) => {
      started.push({ resolve, reject })
    })
  return { fetch, started }
}
const turn = () => new Promise((r) => setImmediate(r))

describe('Class: ExpiringCache', () => {
  it('serves the cached value until exactly maxAgeMs, then fetches again', async () => {
    let now = 0
    const cache = new ExpiringCache<string>(1_000, { now: () => now })
    const { fetch, started } = fetches()
    const first = cache.get('k', false, fetch)
    started[0]?.resolve('v1')
    await first
    now = 999
    expect(cache.get('k', false, fetch)).toBe(first)
    now = 1_000
    void cache.get('k', false, fetch)
    expect(started).toHaveLength(2)
  })

  it('shares a fetch in flight, forced or not', async () => {
    const cache = new ExpiringCache<string>(1_000, { now: () => 0 })
    const { fetch, started } = fetches()
    const a = cache.get('k', false, fetch)
    const b = cache.get('k', true, fetch)
    expect(b).toBe(a)
    expect(started).toHaveLength(1)
    started[0]?.resolve('v')
    await a
    // Settled: a forced call now fetches anew.
    void cache.get('k', true, fetch)
    expect(started).toHaveLength(2)
  })

  it('forgets a failed fetch, but never a newer entry when an older fetch fails late', async () => {
    const cache = new ExpiringCache<string>(1_000, { now: () => 0 })
    const { fetch, started } = fetches()
    const old = cache.get('k', false, fetch)
    old.catch(() => {})
    cache.clear()
    const newer = cache.get('k', false, fetch)
    started[0]?.reject(new Error('late failure'))
    await turn()
    // The newer fetch is still the cached one: shared, not started again.
    expect(cache.get('k', false, fetch)).toBe(newer)
    expect(started).toHaveLength(2)
    started[1]?.reject(new Error('fails too'))
    await newer.catch(() => {})
    await turn()
    void cache.get('k', false, fetch)
    expect(started).toHaveLength(3)
  })

  it('refresh: fetches when nothing is cached, returns a value already different from the refused one', async () => {
    const cache = new ExpiringCache<string>(1_000, { now: () => 0 })
    const { fetch, started } = fetches()
    const same = (a: string, b: string) => a === b
    const refreshed = cache.refresh('k', 'refused', same, fetch)
    await turn()
    expect(started).toHaveLength(1)
    started[0]?.resolve('fresh')
    expect(await refreshed).toBe('fresh')
    // Another caller refused the old value after this refresh: it gets the fresh one, no new fetch.
    expect(await cache.refresh('k', 'refused', same, fetch)).toBe('fresh')
    expect(started).toHaveLength(1)
  })

  it('after a refusal, takes an entry that replaced the refused one meanwhile, without fetching again', async () => {
    const cache = new ExpiringCache<string>(1_000, { now: () => 0 })
    const { fetch, started } = fetches()
    const first = cache.get('k', false, fetch)
    started[0]?.resolve('v1')
    await first
    // The refusal reads the refused entry; before it looks again, a forced call replaces it.
    const refreshed = cache.refresh('k', 'v1', (a, b) => a === b, fetch)
    const replaced = cache.get('k', true, fetch)
    started[1]?.resolve('v2')
    await replaced
    await turn()

    expect(started).toHaveLength(2)
    await expect(refreshed).resolves.toBe('v2')
  })
})
