// Tenant ids (and apps) that passed validation, as scopes: a warm call finds its scope without
// checking or allocating anything again.
import { UnknownClusterError } from '../errors'
import { assertApp, assertSchemaName, assertTenantId, poolKey } from '../tenancy/tenant-id'
import type { Scope } from '../types'

/**
 * Key of the master/catalog scope. `$` cannot occur in a tenant id, so it never collides.
 *
 * @example
 * const master = pools.stats().scopes.find((s) => s.key === MASTER_KEY)
 */
export const MASTER_KEY = '$master'

// Bounded: a flood of distinct ids cannot grow it for ever (it is cleared, not evicted).
export const MAX_CACHED_SCOPES = 10_000

/** Where a scope's sessions run: the writer, the writer in read-only sessions, or the reader. */
export type Access = 'write' | 'read-only' | 'reader'

/** What a cluster offers its scopes. */
export interface ClusterShape {
  name: string
  hasReader: boolean
}

export class ValidatedScopes {
  // tenantId → app (undefined for none) → scope on the main cluster's writer. Nested maps, not a
  // joined key, so that an invalid id like "acme:web" can never match a cached pair; and
  // `undefined`, not '', for no app, so that an invalid app '' is never found and always checked.
  readonly #scopes = new Map<string, Map<string | undefined, Scope>>()
  // Scopes on another cluster, or read-only, by key (built only from validated parts).
  readonly #variants = new Map<string, Scope>()
  readonly #schemaFor: (tenantId: string) => string
  readonly #clusters: ReadonlyMap<string, ClusterShape>
  readonly #main: string

  constructor(
    schemaFor: (tenantId: string) => string,
    clusters: ReadonlyMap<string, ClusterShape>,
    main: string,
  ) {
    this.#schemaFor = schemaFor
    this.#clusters = clusters
    this.#main = main
  }

  /**
   * The scope of `tenantId` (and `app`) on `cluster` (the main one if not given), read-only if
   * asked, validated on first sight; throws InvalidTenantError, or InvalidOptionsError for a cluster
   * that is not configured.
   */
  scope(tenantId: string, app: string | undefined, cluster?: string, readOnly?: boolean): Scope {
    const base = this.#base(tenantId, app)
    if ((cluster === undefined || cluster === this.#main) && !readOnly) return base
    const shape = this.#cluster(cluster ?? this.#main)
    return this.variant(base, shape.name, readOnly ? (shape.hasReader ? 'reader' : 'read-only') : 'write')
  }

  /** `scope` on `cluster` with `access`: how a reader's scope falls back to its writer. */
  variant(scope: Scope, cluster: string, access: Access): Scope {
    const tenantKey = scope.tenantId === null ? scope.key : poolKey(scope.tenantId, scope.app ?? undefined)
    const key = `${tenantKey}${cluster === this.#main ? '' : `@${cluster}`}${access === 'write' ? '' : `/${access}`}`
    const known = this.#variants.get(key)
    if (known) return known
    const made: Scope = {
      ...scope,
      key,
      cluster,
      readOnly: access !== 'write',
      onReader: access === 'reader',
    }
    if (this.#variants.size >= MAX_CACHED_SCOPES) this.#variants.clear()
    this.#variants.set(key, made)
    return made
  }

  #base(tenantId: string, app: string | undefined): Scope {
    const known = this.#scopes.get(tenantId)?.get(app)
    if (known) return known
    assertTenantId(tenantId)
    if (app !== undefined) assertApp(app)
    const schema = this.#schemaFor(tenantId)
    assertSchemaName(schema)
    const scope: Scope = {
      key: poolKey(tenantId, app),
      tenantId,
      app: app ?? null,
      schema,
      cluster: this.#main,
      readOnly: false,
      onReader: false,
    }
    if (this.#scopes.size >= MAX_CACHED_SCOPES) this.#scopes.clear()
    const apps = this.#scopes.get(tenantId) ?? new Map<string | undefined, Scope>()
    apps.set(app, scope)
    this.#scopes.set(tenantId, apps)
    return scope
  }

  #cluster(name: string): ClusterShape {
    const shape = this.#clusters.get(name)
    if (!shape) throw new UnknownClusterError(name)
    return shape
  }
}
