// What the login of tenant traffic may do: read and write a tenant's rows, and read the catalog.
// It owns nothing, so it cannot create, alter, drop or truncate a table, nor disable a trigger: the
// fence of a moving tenant holds against it, and one SQL injection in a tenant route cannot reach
// any schema's structure. The schema owner (the login that migrates) grants these; they are
// idempotent, so granting again after every migration is safe.
import type { ClientBase } from 'pg'
import { quoteIdent } from '../tenancy/tenant-id'

/**
 * Rows of `schema`'s tables and sequences for `role`, now and for tables the owner adds later.
 *
 * @example
 * await pools.master.withClient((client) => grantTenantTraffic(client, pools.schemaOf('acme'), 'app_traffic'))
 */
export async function grantTenantTraffic(client: ClientBase, schema: string, role: string): Promise<void> {
  const s = quoteIdent(schema)
  const r = quoteIdent(role)
  const statements = [
    `GRANT USAGE ON SCHEMA ${s} TO ${r}`,
    `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${s} TO ${r}`,
    `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${s} TO ${r}`,
    // Tables a later migration adds, when the owner runs it.
    `ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${r}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT USAGE, SELECT ON SEQUENCES TO ${r}`,
    // Which migrations ran is the owner's record: readable, not writable.
    `REVOKE INSERT, UPDATE, DELETE ON ${s}.schema_migrations FROM ${r}`,
  ]
  await inOneTransaction(client, schema, statements)
}

/**
 * The catalog (`tenants` in `masterSchema`), read-only for `role`: where each tenant lives.
 *
 * @example
 * await pools.master.withClient((client) => grantCatalogRead(client, pools.masterSchema, 'app_traffic'))
 */
export async function grantCatalogRead(
  client: ClientBase,
  masterSchema: string,
  role: string,
): Promise<void> {
  const s = quoteIdent(masterSchema)
  const r = quoteIdent(role)
  await inOneTransaction(client, masterSchema, [
    `GRANT USAGE ON SCHEMA ${s} TO ${r}`,
    `GRANT SELECT ON ${s}.tenants TO ${r}`,
  ])
}

/**
 * Takes, until the end of the caller's transaction, the lock under which the privileges of `schema`
 * and its objects change. PostgreSQL refuses a change to an object's privileges that races another
 * ("tuple concurrently updated", XX000), as two admin environments provisioning at once do.
 *
 * @example
 * await pools.master.transaction(async (client) => {
 *   await lockGrants(client, schema)
 *   await client.query(`GRANT USAGE ON SCHEMA ${quoteIdent(schema)} TO ${quoteIdent(role)}`)
 * })
 */
export async function lockGrants(client: ClientBase, schema: string): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`tenant-pools:grants:${schema}`])
}

async function inOneTransaction(client: ClientBase, schema: string, statements: string[]): Promise<void> {
  await client.query('BEGIN')
  try {
    await lockGrants(client, schema)
    for (const q of statements) await client.query(q)
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  }
}
