// The per-environment connection budget: a counting semaphore shared by every pool of a registry.
// RDS max_connections is small, and environments x tenants x pool size exhausts it, so the sum of
// open (and opening, and closing) connections in one environment never exceeds `limit`.

export interface BudgetClaimant {
  /** Called when a slot has been reserved for this claimant. */
  granted(): void
}

interface Claim {
  claimant: BudgetClaimant
  since: number
}

export class ConnectionBudget {
  readonly limit: number
  #used = 0
  // Slots whose connection is closing: they come back on their own, so nothing else needs closing.
  #returning = 0
  // FIFO of pools waiting for a slot, one entry per connection they asked for.
  readonly #queue: Claim[] = []
  readonly #onShortage: () => void
  readonly #now: () => number

  /** `onShortage` is asked to free a slot (close an idle connection) when a claimant has to queue. */
  constructor(limit: number, onShortage: () => void, now: () => number = Date.now) {
    this.limit = limit
    this.#onShortage = onShortage
    this.#now = now
  }

  get used(): number {
    return this.#used
  }

  get waiting(): number {
    return this.#queue.length
  }

  /** When the longest waiting claim of another claimant than `except` was queued, if any. */
  oldestClaimSince(except: BudgetClaimant): number | undefined {
    // Asked on every release: with nobody queued (the warm path) it allocates nothing.
    if (this.#queue.length === 0) return undefined
    return this.#queue.find((c) => c.claimant !== except)?.since
  }

  /** Reserves a slot now if one is free, otherwise queues the claimant and asks for one to be freed. */
  claim(claimant: BudgetClaimant): void {
    if (this.#used < this.limit && this.#queue.length === 0) {
      this.#used++
      claimant.granted()
      return
    }
    this.#queue.push({ claimant, since: this.#now() })
    if (this.#queue.length > this.#returning) this.#onShortage()
  }

  /** Withdraws one queued claim (the claimant no longer needs it). Returns false if none was queued. */
  withdraw(claimant: BudgetClaimant): boolean {
    const i = this.#queue.findIndex((c) => c.claimant === claimant)
    if (i === -1) return false
    this.#queue.splice(i, 1)
    return true
  }

  /** Returns a slot: it goes straight to the longest waiting claimant, if any. */
  release(): void {
    const next = this.#queue.shift()
    if (next) {
      next.claimant.granted()
      return
    }
    this.#used--
  }

  /** Returns a slot once `closed` settles (a socket closing): until then it still counts as used. */
  releaseWhen(closed: Promise<unknown>): void {
    this.#returning++
    const done = () => {
      this.#returning--
      this.release()
    }
    closed.then(done, done)
  }
}
