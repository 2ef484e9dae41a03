// Run once per deployment (`npm run setup -- <tenant>…`): the master schema's catalog, then each
// tenant named: its row in the catalog and its schema, with its own migrations.
import { masterMigrations, migrate } from 'tenant-pools'
import { pools } from './db.js'

const tenantMigrations = [
  { version: '0001_notes', sql: 'CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)' },
]

const registry = pools()
try {
  await registry.master.withClient(async (client) => {
    await migrate(client, registry.masterSchema, masterMigrations)
    for (const tenant of process.argv.slice(2)) {
      await client.query('INSERT INTO tenants (id) VALUES ($1) ON CONFLICT (id) DO NOTHING', [tenant])
      await migrate(client, registry.schemaOf(tenant), tenantMigrations)
    }
  })
} finally {
  await registry.end()
}
