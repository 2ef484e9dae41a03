// The master schema's migrations: the tenant catalog that TenantCatalog and the tenantDb middleware
// read, and the maintenance job's progress. Exported by lib/index.ts too, for a project that uses the
// package to run with migrate(). Never edit a released migration: add one.
import type { Migration } from '../../lib/placement/migrate'
import tenants from './0001_tenants'
import maintenance from './0002_maintenance'
import placement from './0003_placement'
import oldCopy from './0004_old_copy'
import maintenanceRunning from './0005_maintenance_running'

/**
 * The master schema's migrations: the tenant catalog (`tenants`: status, cluster, a move's state)
 * that TenantCatalog reads, and the maintenance job's tables. Run them with `migrate()` once per
 * deployment.
 *
 * @example
 * await pools.master.withClient((client) => migrate(client, pools.masterSchema, masterMigrations))
 */
export const masterMigrations: Migration[] = [
  { version: '0001_tenants', sql: tenants },
  { version: '0002_maintenance', sql: maintenance },
  { version: '0003_placement', sql: placement },
  { version: '0004_old_copy', sql: oldCopy },
  { version: '0005_maintenance_running', sql: maintenanceRunning },
]
