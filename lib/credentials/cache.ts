// A small promise cache shared by the credential providers: entries expire after maxAgeMs,
// concurrent callers share one pending fetch, and a failed fetch is never cached.
import type { Clock } from '../types'

interface Entry<V> {
  promise: Promise<V>
  fetchedAt: number
  settled: boolean
}

export class ExpiringCache<V> {
  // Map chosen for O(1) delete when a fetch fails.
  readonly #entries = new Map<string, Entry<V>>()
  readonly #maxAgeMs: number
  readonly #clock: Clock

  constructor(maxAgeMs: number, clock: Clock) {
    this.#maxAgeMs = maxAgeMs
    this.#clock = clock
  }

  /**
   * The cached value, or a fresh fetch when absent, expired or `force`d. A fetch in flight is always
   * shared, forced or not, so 100 callers refused at once trigger one refresh.
   */
  get(key: string, force: boolean, fetch: () => Promise<V>): Promise<V> {
    const now = this.#clock.now()
    const entry = this.#entries.get(key)
    if (entry && (!entry.settled || (!force && now - entry.fetchedAt < this.#maxAgeMs))) return entry.promise
    const fresh: Entry<V> = { promise: fetch(), fetchedAt: now, settled: false }
    this.#entries.set(key, fresh)
    fresh.promise.then(
      () => {
        fresh.settled = true
      },
      () => {
        if (this.#entries.get(key) === fresh) this.#entries.delete(key)
      },
    )
    return fresh.promise
  }

  /**
   * After the server refused `refused`: the cached (or in-flight) value if it is already different
   * (another caller refreshed first), otherwise a new fetch that concurrent refusals share. A plain
   * fetch that starts meanwhile is awaited and compared too, never trusted blindly.
   */
  async refresh(key: string, refused: V, same: (a: V, b: V) => boolean, fetch: () => Promise<V>): Promise<V> {
    for (;;) {
      const entry = this.#entries.get(key)
      if (!entry) return this.get(key, true, fetch)
      const current = await entry.promise.catch(() => undefined)
      if (this.#entries.get(key) !== entry) continue
      if (current !== undefined && !same(current, refused)) return current
      return this.get(key, true, fetch)
    }
  }

  clear(): void {
    this.#entries.clear()
  }
}
