// Starts one PostgreSQL for the whole jest run, unless DATABASE_URL names one already.
import { startEmbeddedPostgres } from '../../scripts/embedded-postgres.mjs'

export default async function globalSetup() {
  if (process.env.DATABASE_URL) return
  const server = await startEmbeddedPostgres({ database: 'tenant_pools_test', tls: true })
  // Workers are spawned after this and inherit the environment.
  process.env.DATABASE_URL = server.url
  process.env.TEST_PG_CA_PATH = server.caPath
  globalThis.__TENANT_POOLS_PG__ = server
}
