// Tenant admin: provisioning, listing, suspending, deleting, and this environment's pool stats.
import { HttpError, jsonResponse, MAX_TENANT_ID_LENGTH } from '../../lib'
import * as z from '../../lib/zod'
import { adminHandler } from '../shared/admin-handler'
import { decodeCursor, encodeCursor, pageQuery } from '../shared/cursor'
import { catalog, logger, pools } from '../shared/runtime'
import { validate } from '../shared/validate'
import { moveTenant } from './move'
import { provisionTenant } from './provision'
import { dropTenantRole, ensureTenantRole, tenantRoleExists, tenantSecretId } from './tenant-role'

const tenantIdSchema = z.builtOnFirstUse(() =>
  z.string().check(z.regex(/^[a-z0-9_]+$/), z.minLength(1), z.maxLength(MAX_TENANT_ID_LENGTH)),
)
const createBody = z.builtOnFirstUse(() =>
  z.strictObject({
    id: tenantIdSchema(),
    role: z.optional(z.boolean()),
    cluster: z.optional(clusterSchema()),
  }),
)
const clusterSchema = z.builtOnFirstUse(() => z.string().check(z.regex(/^[a-z][a-z0-9_-]{0,31}$/)))
const moveBody = z.builtOnFirstUse(() => z.strictObject({ cluster: clusterSchema() }))
const patchBody = z.builtOnFirstUse(() => z.strictObject({ status: z.enum(['active', 'suspended']) }))
// A page of the catalog: thousands of tenants are never read, sent or held at once.
const listQuery = z.builtOnFirstUse(() => pageQuery(200, 50))

interface TenantRow {
  id: string
  status: string
  cluster: string
  moving_to: string | null
  created_at: Date
  updated_at: Date
}
const toTenant = (r: TenantRow) => ({
  id: r.id,
  status: r.status,
  cluster: r.cluster,
  movingTo: r.moving_to,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
})

export const create = adminHandler(
  async (event) => {
    const { id, role, cluster } = validate(createBody(), event.body, 'body')
    if (role) {
      tenantSecretId(id) // fails fast (400) when per-tenant roles are not configured
      // Roles are objects of one cluster: the main one, where ensureTenantRole creates them.
      if (cluster !== undefined && cluster !== pools().mainCluster) {
        throw new HttpError(
          400,
          'ROLE_ON_MAIN_CLUSTER_ONLY',
          'A tenant with its own role lives on the main cluster',
        )
      }
    }
    const { created, applied } = await provisionTenant(pools(), id, role ? pools().mainCluster : cluster)
    const ownRole = role ? await ensureTenantRole(pools(), id) : undefined
    catalog.invalidate(id)
    const { rows } = await pools().master.query<TenantRow>('SELECT * FROM tenants WHERE id = $1', [id])
    return jsonResponse(created ? 201 : 200, {
      ...toTenant(rows[0] as TenantRow),
      migrationsApplied: applied,
      ...(ownRole ? { role: ownRole.role, secretId: ownRole.secretId } : {}),
    })
  },
  { body: true },
)

// The cursor is opaque to callers: the id of the last tenant of the page, base64url encoded, as
// /orders' cursor is. Keyset, by the primary key: a page costs the same however deep it is.
const cursorKey = (decoded: unknown): string | undefined =>
  Array.isArray(decoded) && decoded.length === 1 && tenantIdSchema().safeParse(decoded[0]).success
    ? (decoded[0] as string)
    : undefined

/** The catalog by id, a page at a time (`limit`, 50 by default, at most 200); `nextCursor` null at the end. */
export const list = adminHandler(async (event) => {
  const { limit, cursor } = validate(listQuery(), event.queryStringParameters ?? {}, 'query')
  const after = cursor === undefined ? null : decodeCursor(cursor, cursorKey)
  const { rows } = await pools().master.query<TenantRow>(
    'SELECT * FROM tenants WHERE $1::text IS NULL OR id > $1 ORDER BY id LIMIT $2',
    [after, limit + 1],
  )
  const page = rows.slice(0, limit)
  const last = page[page.length - 1]
  return jsonResponse(200, {
    items: page.map(toTenant),
    nextCursor: rows.length > limit && last ? encodeCursor([last.id]) : null,
  })
})

export const patch = adminHandler(
  async (event) => {
    const id = validate(tenantIdSchema(), event.pathParameters?.id, 'tenant id')
    const { status } = validate(patchBody(), event.body, 'body')
    const { rows } = await pools().master.query<TenantRow>(
      `UPDATE tenants SET status = $2, updated_at = now() WHERE id = $1 AND status <> 'deleted' RETURNING *`,
      [id, status],
    )
    if (!rows[0]) throw new HttpError(404, 'TENANT_NOT_FOUND', 'Unknown tenant')
    catalog.invalidate(id)
    if (status === 'suspended') await pools().evict(id)
    // A tenant coming back may have missed migrations while suspended.
    else await provisionTenant(pools(), id)
    return jsonResponse(200, toTenant(rows[0]))
  },
  { body: true },
)

// Whether the catalog has a row for the tenant, whatever its status.
const isTenant = async (id: string): Promise<boolean> =>
  (await pools().master.query('SELECT 1 FROM tenants WHERE id = $1', [id])).rowCount === 1

export const remove = adminHandler(async (event) => {
  const id = validate(tenantIdSchema(), event.pathParameters?.id, 'tenant id')
  const { rowCount } = await pools().master.query(
    `UPDATE tenants SET status = 'deleted', updated_at = now() WHERE id = $1 AND status <> 'deleted'`,
    [id],
  )
  // Deleted already: a 404, unless that deletion was cut short before its role was dropped (a
  // timeout, a throttled Secrets Manager, a grant made by hand): its retry finishes it.
  if (!rowCount && !((await isTenant(id)) && (await tenantRoleExists(pools(), id)))) {
    throw new HttpError(404, 'TENANT_NOT_FOUND', 'Unknown tenant')
  }
  catalog.invalidate(id)
  const evicted = await pools().evict(id)
  // Its own role (if it had one) can no longer log in, and its secret is scheduled for deletion.
  const dropped = await dropTenantRole(pools(), id)
  return jsonResponse(200, {
    id,
    status: 'deleted',
    poolsEvicted: evicted,
    roleDropped: dropped?.role ?? null,
  })
})

/** Moves a tenant to another cluster (see move.ts); answers once the move is done. */
export const move = adminHandler(
  async (event) => {
    const id = validate(tenantIdSchema(), event.pathParameters?.id, 'tenant id')
    const { cluster } = validate(moveBody(), event.body, 'body')
    return jsonResponse(200, await moveTenant(pools(), catalog, id, cluster, logger))
  },
  { body: true },
)

/** Readiness and pools: the master schema answers (503 if not), and this environment's stats. */
export const poolStats = adminHandler(async () => {
  await pools().master.query('SELECT 1')
  // Each warm environment keeps its own pools: what one reports says nothing of the others.
  return jsonResponse(200, {
    covers:
      'this execution environment only: every other environment of this function, and every other function, has pools and counters of its own',
    database: 'ok',
    ...pools().stats(),
  })
})
