// Tenant admin: provisioning, listing, suspending, deleting, and this environment's pool stats.
import { HttpError, jsonResponse, MAX_TENANT_ID_LENGTH } from '../../lib'
import * as z from '../../lib/zod'
import { adminHandler } from '../shared/admin-handler'
import { catalog, pools } from '../shared/runtime'
import { validate } from '../shared/validate'
import { provisionTenant } from './provision'
import { dropTenantRole, ensureTenantRole, tenantSecretId } from './tenant-role'

const tenantIdSchema = z.builtOnFirstUse(() =>
  z.string().check(z.regex(/^[a-z0-9_]+$/), z.minLength(1), z.maxLength(MAX_TENANT_ID_LENGTH)),
)
const createBody = z.builtOnFirstUse(() =>
  z.strictObject({ id: tenantIdSchema(), role: z.optional(z.boolean()) }),
)
const patchBody = z.builtOnFirstUse(() => z.strictObject({ status: z.enum(['active', 'suspended']) }))

interface TenantRow {
  id: string
  status: string
  created_at: Date
  updated_at: Date
}
const toTenant = (r: TenantRow) => ({
  id: r.id,
  status: r.status,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
})

export const create = adminHandler(
  async (event) => {
    const { id, role } = validate(createBody(), event.body, 'body')
    if (role) tenantSecretId(id) // fails fast (400) when per-tenant roles are not configured
    const { created, applied } = await provisionTenant(pools(), id)
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

export const list = adminHandler(async () => {
  const { rows } = await pools().master.query<TenantRow>('SELECT * FROM tenants ORDER BY id')
  return jsonResponse(200, { items: rows.map(toTenant) })
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

export const remove = adminHandler(async (event) => {
  const id = validate(tenantIdSchema(), event.pathParameters?.id, 'tenant id')
  const { rowCount } = await pools().master.query(
    `UPDATE tenants SET status = 'deleted', updated_at = now() WHERE id = $1 AND status <> 'deleted'`,
    [id],
  )
  if (!rowCount) throw new HttpError(404, 'TENANT_NOT_FOUND', 'Unknown tenant')
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

/** Readiness and pools: the master schema answers (503 if not), and this environment's stats. */
export const poolStats = adminHandler(async () => {
  await pools().master.query('SELECT 1')
  return jsonResponse(200, { database: 'ok', ...pools().stats() })
})
