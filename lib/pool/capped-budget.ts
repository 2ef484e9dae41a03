// A cluster's share of the environment's budget: a login of a capped cluster first wins one of the
// cluster's slots, then one of the environment's. The environment's budget still bounds the sum over
// every cluster; the cap keeps one busy cluster from taking all of it, or from exceeding what its
// own max_connections can give this environment.
import type { BudgetClaimant, ConnectionBudget } from './budget'

/** What a login pool needs of a budget: ConnectionBudget, or a cluster's capped share of one. */
export type Budget = Pick<
  ConnectionBudget,
  'limit' | 'used' | 'waiting' | 'claim' | 'withdraw' | 'release' | 'releaseWhen' | 'oldestClaimSince'
>

export class CappedBudget implements Budget {
  readonly #own: ConnectionBudget
  readonly #parent: ConnectionBudget
  // One stand-in per claimant and level, stable, so that a queued claim can be found and withdrawn.
  readonly #atCap = new WeakMap<BudgetClaimant, BudgetClaimant>()
  readonly #atParent = new WeakMap<BudgetClaimant, BudgetClaimant>()

  /** `own` counts this cluster's slots (its limit is the cap); `parent` is the environment's budget. */
  constructor(own: ConnectionBudget, parent: ConnectionBudget) {
    this.#own = own
    this.#parent = parent
  }

  get limit(): number {
    return this.#own.limit
  }

  /** Slots this cluster holds, or has won at its cap and awaits from the environment. */
  get used(): number {
    return this.#own.used
  }

  get waiting(): number {
    return this.#own.waiting
  }

  claim(claimant: BudgetClaimant): void {
    this.#own.claim(this.#capStandIn(claimant))
  }

  withdraw(claimant: BudgetClaimant): boolean {
    // A claim still queued at the cap holds nothing; one queued at the environment holds a cluster slot.
    if (this.#own.withdraw(this.#capStandIn(claimant))) return true
    if (!this.#parent.withdraw(this.#parentStandIn(claimant))) return false
    this.#own.release()
    return true
  }

  release(): void {
    this.#parent.release()
    this.#own.release()
  }

  releaseWhen(closed: Promise<unknown>): void {
    this.#parent.releaseWhen(closed)
    this.#own.releaseWhen(closed)
  }

  oldestClaimSince(except: BudgetClaimant): number | undefined {
    const atCap = this.#own.oldestClaimSince(this.#capStandIn(except))
    const atParent = this.#parent.oldestClaimSince(this.#parentStandIn(except))
    if (atCap === undefined) return atParent
    if (atParent === undefined) return atCap
    return Math.min(atCap, atParent)
  }

  #capStandIn(claimant: BudgetClaimant): BudgetClaimant {
    let standIn = this.#atCap.get(claimant)
    if (!standIn) {
      const atParent = this.#parentStandIn(claimant)
      standIn = { granted: () => this.#parent.claim(atParent) }
      this.#atCap.set(claimant, standIn)
    }
    return standIn
  }

  #parentStandIn(claimant: BudgetClaimant): BudgetClaimant {
    let standIn = this.#atParent.get(claimant)
    if (!standIn) {
      standIn = { granted: () => claimant.granted() }
      this.#atParent.set(claimant, standIn)
    }
    return standIn
  }
}
