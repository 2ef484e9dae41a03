// Versioned migrations, applied in order and tracked per schema. SQL lives in TypeScript modules so
// that the Lambda bundle carries it without file copying. Never edit a released migration: add one.
import type { Migration } from '../lib/placement/migrate'
import orders from './tenant/0001_orders'
import referenceLive from './tenant/0002_reference_live'

export { masterMigrations } from './master'

export const tenantMigrations: Migration[] = [
  { version: '0001_orders', sql: orders },
  { version: '0002_reference_live', sql: referenceLive },
]
