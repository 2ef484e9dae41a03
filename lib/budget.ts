// The per-environment connection budget: a counting semaphore shared by every pool of a registry.
// RDS max_connections is small, and environments x tenants x pool size exhausts it, so the sum of
// open (and opening) connections in one environment never exceeds `limit`.

export interface BudgetClaimant {
  /** Called when a slot has been reserved for this claimant. */
  granted(): void
}

export class ConnectionBudget {
  readonly limit: number
  #used = 0
  // FIFO of pools waiting for a slot, one entry per connection they asked for.
  #queue: BudgetClaimant[] = []
  readonly #onShortage: () => void

  /** `onShortage` is asked to free a slot (close an idle connection) when a claimant has to queue. */
  constructor(limit: number, onShortage: () => void) {
    this.limit = limit
    this.#onShortage = onShortage
  }

  get used(): number {
    return this.#used
  }

  get waiting(): number {
    return this.#queue.length
  }

  /** Reserves a slot now if one is free, otherwise queues the claimant and asks for one to be freed. */
  claim(claimant: BudgetClaimant): void {
    if (this.#used < this.limit && this.#queue.length === 0) {
      this.#used++
      claimant.granted()
      return
    }
    this.#queue.push(claimant)
    this.#onShortage()
  }

  /** Withdraws one queued claim (the claimant no longer needs it). Returns false if none was queued. */
  withdraw(claimant: BudgetClaimant): boolean {
    const i = this.#queue.indexOf(claimant)
    if (i === -1) return false
    this.#queue.splice(i, 1)
    return true
  }

  /** Returns a slot: it goes straight to the longest waiting claimant, if any. */
  release(): void {
    const next = this.#queue.shift()
    if (next) {
      next.granted()
      return
    }
    this.#used--
  }
}
