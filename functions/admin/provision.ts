// Provisioning a tenant: the catalog row, its schema, and its migrations. Idempotent, and safe when
// two calls race: migrate() holds an advisory lock per schema, and the catalog insert is an upsert.

import { migrate, type TenantPools } from '../../lib'
import { masterMigrations, tenantMigrations } from '../../migrations'

export async function migrateMaster(pools: TenantPools): Promise<string[]> {
  return pools.master.withClient((client) => migrate(client, pools.masterSchema, masterMigrations))
}

/** Returns whether the tenant is new (false: it existed, and was reactivated if deleted). */
export async function provisionTenant(
  pools: TenantPools,
  tenantId: string,
): Promise<{ created: boolean; applied: string[] }> {
  const schema = pools.schemaOf(tenantId)
  return pools.master.withClient(async (client) => {
    await migrate(client, pools.masterSchema, masterMigrations)
    const applied = await migrate(client, schema, tenantMigrations)
    const { rows } = await client.query<{ created: boolean }>(
      `INSERT INTO tenants (id) VALUES ($1)
       ON CONFLICT (id) DO UPDATE SET status = 'active', updated_at = now() WHERE tenants.status = 'deleted'
       RETURNING (xmax = 0) AS created`,
      [tenantId],
    )
    return { created: rows[0]?.created ?? false, applied }
  })
}
