// Tenant ids (and apps) that passed validation, as scopes: a warm call finds its scope without
// checking or allocating anything again.
import { assertApp, assertSchemaName, assertTenantId, poolKey } from '../tenancy/tenant-id'
import type { Scope } from '../types'

// Bounded: a flood of distinct ids cannot grow it for ever (it is cleared, not evicted).
const MAX_CACHED_SCOPES = 10_000

export class ValidatedScopes {
  // tenantId → app (undefined for none) → scope. Nested maps, not a joined key, so that an invalid
  // id like "acme:web" can never match a cached pair; and `undefined`, not '', for no app, so that
  // an invalid app '' is never found and always checked.
  readonly #scopes = new Map<string, Map<string | undefined, Scope>>()
  readonly #schemaFor: (tenantId: string) => string

  constructor(schemaFor: (tenantId: string) => string) {
    this.#schemaFor = schemaFor
  }

  /** The scope of `tenantId` (and `app`), validated on first sight; throws InvalidTenantError. */
  scope(tenantId: string, app: string | undefined): Scope {
    const known = this.#scopes.get(tenantId)?.get(app)
    if (known) return known
    assertTenantId(tenantId)
    if (app !== undefined) assertApp(app)
    const schema = this.#schemaFor(tenantId)
    assertSchemaName(schema)
    const scope = { key: poolKey(tenantId, app), tenantId, app: app ?? null, schema }
    if (this.#scopes.size >= MAX_CACHED_SCOPES) this.#scopes.clear()
    const apps = this.#scopes.get(tenantId) ?? new Map<string | undefined, Scope>()
    apps.set(app, scope)
    this.#scopes.set(tenantId, apps)
    return scope
  }
}
