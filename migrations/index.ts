// Versioned migrations, applied in order and tracked per schema. SQL lives in TypeScript modules so
// that the Lambda bundle carries it without file copying. Never edit a released migration: add one.
import type { Migration } from '../lib/tenancy/migrate'
import tenants from './master/0001_tenants'
import maintenance from './master/0002_maintenance'
import placement from './master/0003_placement'
import oldCopy from './master/0004_old_copy'
import orders from './tenant/0001_orders'
import referenceLive from './tenant/0002_reference_live'

export const masterMigrations: Migration[] = [
  { version: '0001_tenants', sql: tenants },
  { version: '0002_maintenance', sql: maintenance },
  { version: '0003_placement', sql: placement },
  { version: '0004_old_copy', sql: oldCopy },
]

export const tenantMigrations: Migration[] = [
  { version: '0001_orders', sql: orders },
  { version: '0002_reference_live', sql: referenceLive },
]
