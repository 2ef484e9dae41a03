// Provisioning a tenant: the catalog row, its schema on its cluster, its migrations, and the rights
// of tenant traffic's login on it. Idempotent, and safe when two calls race: one advisory lock per
// tenant id serializes them on the master, and migrate() holds another per schema.

import type { ClientBase } from 'pg'
import {
  grantCatalogRead,
  grantTenantTraffic,
  HttpError,
  type Migration,
  migrate,
  type TenantPools,
} from '../../lib'
import { masterMigrations, tenantMigrations } from '../../migrations'
import { config } from '../shared/config'

/** The login of tenant traffic (TENANT_POOLS_TRAFFIC_ROLE): unset, every function logs in as one. */
const trafficRole = (): string | undefined => config().TENANT_POOLS_TRAFFIC_ROLE

export async function migrateMaster(pools: TenantPools): Promise<string[]> {
  return pools.master.withClient((client) => migrateCatalog(client, pools))
}

// The master schema's migrations, and the catalog readable by tenant traffic's login.
async function migrateCatalog(client: ClientBase, pools: TenantPools): Promise<string[]> {
  const applied = await migrate(client, pools.masterSchema, masterMigrations)
  const role = trafficRole()
  if (role !== undefined) await grantCatalogRead(client, pools.masterSchema, role)
  return applied
}

/** A tenant schema's migrations (all, or those given), then tenant traffic's rights on what they made. */
export async function migrateTenant(
  client: ClientBase,
  schema: string,
  migrations: Migration[] = tenantMigrations,
): Promise<string[]> {
  const applied = await migrate(client, schema, migrations)
  const role = trafficRole()
  if (role !== undefined) await grantTenantTraffic(client, schema, role)
  return applied
}

export interface Provisioned {
  /** False: it existed, and was reactivated if deleted. */
  created: boolean
  applied: string[]
  cluster: string
}

/**
 * Creates (or completes) a tenant. A new one goes on `cluster`, or else on the cluster with the
 * fewest active tenants; an existing one stays where it is (moving it is `POST …/move`).
 */
export async function provisionTenant(
  pools: TenantPools,
  tenantId: string,
  cluster?: string,
): Promise<Provisioned> {
  const schema = pools.schemaOf(tenantId)
  if (cluster !== undefined && !pools.clusterNames.includes(cluster)) {
    throw new HttpError(400, 'UNKNOWN_CLUSTER', `Unknown cluster; known: ${pools.clusterNames.join(', ')}`)
  }
  return pools.master.withClient(async (client) => {
    await migrateCatalog(client, pools)
    // Session-level, released below (and by the connection's reset whatever happens). A racing call
    // waits here while the first provisions: longer than an API statement may run, within a bound.
    await client.query(
      `SELECT set_config('statement_timeout', '0', false), set_config('lock_timeout', '60s', false)`,
    )
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [`tenant-pools:provision:${tenantId}`])
    try {
      const { rows: existing } = await client.query<{ cluster: string; moving_to: string | null }>(
        'SELECT cluster, moving_to FROM tenants WHERE id = $1',
        [tenantId],
      )
      const placedOn = existing[0]?.cluster
      if (placedOn !== undefined && cluster !== undefined && cluster !== placedOn) {
        throw new HttpError(
          409,
          'TENANT_ON_OTHER_CLUSTER',
          `The tenant lives on cluster ${placedOn}: move it with POST /admin/tenants/{id}/move`,
        )
      }
      const target = placedOn ?? cluster ?? (await leastUsedCluster(client, pools.clusterNames))
      // As the application's login, not the tenant's: a tenant with a role of its own (main cluster
      // only) may not create its schema. On another cluster the tenant's scope logs in as the app.
      const applied =
        target === pools.mainCluster
          ? await migrateTenant(client, schema)
          : await pools.withClient(tenantId, (tenant) => migrateTenant(tenant, schema), {
              cluster: target,
            })
      const { rows } = await client.query<{ created: boolean }>(
        `INSERT INTO tenants (id, cluster) VALUES ($1, $2)
         ON CONFLICT (id) DO UPDATE SET status = 'active', updated_at = now() WHERE tenants.status = 'deleted'
         RETURNING (xmax = 0) AS created`,
        [tenantId, target],
      )
      return { created: rows[0]?.created ?? false, applied, cluster: target }
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`tenant-pools:provision:${tenantId}`])
    }
  })
}

/** The configured cluster with the fewest active tenants (the first named, on a tie). */
async function leastUsedCluster(client: ClientBase, clusters: string[]): Promise<string> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT c.name FROM unnest($1::text[]) WITH ORDINALITY AS c (name, position)
     LEFT JOIN tenants t ON t.cluster = c.name AND t.status = 'active'
     GROUP BY c.name, c.position ORDER BY count(t.id), c.position LIMIT 1`,
    [clusters],
  )
  return rows[0]?.name ?? (clusters[0] as string)
}
