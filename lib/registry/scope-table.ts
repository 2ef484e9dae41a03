// The scopes in use, by key: each one's ScopeUse (its counts and limits), made on its first call.
// Past maxScopes the least recently used quiet scope is retired (LRU); a quiet scope unused for
// scopeTtlMs expires (TTL); evict() and end() remove them. A retired scope's idle connections stay
// with its login, to be rebound to whichever scope needs one next. The sweep that expires scopes
// also sweeps the logins and forgets those no scope uses.
import { applicationNameFor } from '../pool/connector'
import { ScopeUse } from '../pool/scope-use'
import type { Scope } from '../types'
import type { RegistryContext } from './context'
import type { Logins } from './logins'
import { MASTER_KEY } from './scopes'

export class ScopeTable {
  readonly #ctx: RegistryContext
  readonly #logins: Logins
  // Scopes in use, by key: their counts and limits. The connections belong to logins.
  readonly #uses = new Map<string, ScopeUse>()
  #lastSweep: number

  constructor(ctx: RegistryContext, logins: Logins) {
    this.#ctx = ctx
    this.#logins = logins
    this.#lastSweep = ctx.options.clock.now()
  }

  /** The scopes in use. */
  values(): IterableIterator<ScopeUse> {
    return this.#uses.values()
  }

  keys(): IterableIterator<string> {
    return this.#uses.keys()
  }

  /** The scope's use, made (room made for it first) if it has none. */
  useFor(scope: Scope): ScopeUse {
    const existing = this.#uses.get(scope.key)
    if (existing) return existing
    if (scope.key !== MASTER_KEY) this.#makeRoomForScope()
    const o = this.#ctx.options
    const use = new ScopeUse(scope, applicationNameFor(o.applicationNamePrefix, scope.key), o.clock.now())
    this.#uses.set(scope.key, use)
    this.#ctx.counters.scopesCreated++
    return use
  }

  // Timers don't run while an environment is frozen, so calls sweep too (at most once an interval).
  sweepIfDue(now: number): void {
    if (now - this.#lastSweep >= this.#ctx.options.sweepIntervalMs) this.sweep(now)
  }

  sweep(now: number): void {
    this.#lastSweep = now
    this.#logins.sweep(now)
    for (const use of [...this.#uses.values()]) {
      if (use.quiet && now - use.lastUsedAt >= this.#ctx.options.scopeTtlMs) {
        this.#ctx.counters.scopesExpired++
        void this.remove(use.key, false)
      }
    }
    this.#logins.forgetUnused(this.#uses.values())
  }

  // Evicted (`closeIdle`: its connections close, the tenant may be gone) or retired by LRU or TTL
  // (its idle connections stay, to be rebound to whichever scope needs one next).
  remove(key: string, closeIdle = true): Promise<void> {
    const use = this.#uses.get(key)
    if (!use) return Promise.resolve()
    this.#uses.delete(key)
    const login = this.#logins.loginOf(use)
    if (!login) {
      use.ended = true
      return Promise.resolve()
    }
    return this.#ctx.drain(login.endScope(use, closeIdle))
  }

  // Past maxScopes scopes, the least recently used one with no call in flight is ended. If every
  // scope is busy the registry goes over the limit for now rather than cut a running call short.
  #makeRoomForScope(): void {
    // One pass, no arrays: with more tenants than maxScopes this runs on many requests.
    let tenantScopes = 0
    let victim: ScopeUse | undefined
    for (const u of this.#uses.values()) {
      if (u.key === MASTER_KEY) continue
      tenantScopes++
      if (u.quiet && (!victim || u.lastUse < victim.lastUse)) victim = u
    }
    const { maxScopes } = this.#ctx.options
    if (tenantScopes < maxScopes) return
    if (!victim) {
      this.#ctx.log.warn('maxScopes exceeded: every scope has a call in flight', { maxScopes })
      return
    }
    this.#ctx.counters.scopesEvicted++
    void this.remove(victim.key, false)
  }
}
