// Versioned migrations, applied in order and tracked per schema. SQL lives in TypeScript modules so
// that the Lambda bundle carries it without file copying. Never edit a released migration: add one.
import type { Migration } from '../lib/migrate'
import tenants from './master/0001_tenants'
import orders from './tenant/0001_orders'

export const masterMigrations: Migration[] = [{ version: '0001_tenants', sql: tenants }]

export const tenantMigrations: Migration[] = [{ version: '0001_orders', sql: orders }]
