// Whether a tenant has a database role of its own, as a credentials provider asks before it lets a
// tenant whose secret is missing borrow a shared login (CredentialsRequest.hasOwnRole).
//
// The provider may ask while a connection is being opened, holding a slot of the budget (a refresh
// after 28P01). A look-up that then waited for another slot could wait for ever, with every slot
// held the same way. So only a role's first look-up waits: it comes from finding its scope's login,
// before any slot is taken. Later ones answer what was last seen at once, and look again in the
// background once that is older than `maxAgeMs`.
import type { Clock } from '../types'

interface Seen {
  exists: boolean
  at: number
  refreshing: boolean
}

// Names remembered at most: beyond it the oldest is forgotten (its next look-up waits again).
const MAX_NAMES = 10_000

export class RoleLookup {
  readonly #lookup: (name: string) => Promise<boolean>
  readonly #maxAgeMs: number
  readonly #clock: Clock
  readonly #seen = new Map<string, Seen>()
  readonly #pending = new Map<string, Promise<boolean>>()

  constructor(lookup: (name: string) => Promise<boolean>, maxAgeMs: number, clock: Clock) {
    this.#lookup = lookup
    this.#maxAgeMs = maxAgeMs
    this.#clock = clock
  }

  /** Whether role `name` exists, as last seen; looked up (and waited for) the first time only. */
  async exists(name: string): Promise<boolean> {
    const seen = this.#seen.get(name)
    if (seen === undefined) return this.#lookUp(name)
    if (!seen.refreshing && this.#clock.now() - seen.at > this.#maxAgeMs) {
      seen.refreshing = true
      // A failed refresh keeps the last answer, and the next call tries again.
      this.#lookUp(name).catch(() => {
        seen.refreshing = false
      })
    }
    return seen.exists
  }

  // One look-up per name at a time; its answer is remembered.
  #lookUp(name: string): Promise<boolean> {
    const pending = this.#pending.get(name)
    if (pending) return pending
    const lookup = this.#lookup(name)
      .then((exists) => {
        this.#seen.delete(name)
        this.#seen.set(name, { exists, at: this.#clock.now(), refreshing: false })
        if (this.#seen.size > MAX_NAMES) this.#seen.delete(this.#seen.keys().next().value as string)
        return exists
      })
      .finally(() => this.#pending.delete(name))
    this.#pending.set(name, lookup)
    return lookup
  }
}
