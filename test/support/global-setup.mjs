// Starts what the whole jest run needs, unless the environment names it already:
// - DATABASE_URL: the main cluster (with TLS);
// - TEST_REPLICA_URL: a streaming replica of it (only when the main cluster is ours);
// - TEST_CLUSTER_B_URL: a second cluster, for tenants placed on another database.
import { startEmbeddedPostgres } from '../../scripts/embedded-postgres.mjs'
import { startReplica } from './replica.mjs'

export default async function globalSetup() {
  const started = []
  globalThis.__TENANT_POOLS_SERVERS__ = started
  // Workers are spawned after this and inherit the environment.
  if (!process.env.DATABASE_URL) {
    const server = await startEmbeddedPostgres({ database: 'tenant_pools_test', tls: true })
    started.push(server)
    process.env.DATABASE_URL = server.url
    process.env.TEST_PG_CA_PATH = server.caPath
    // A test that stops a replica makes one of its own from this.
    process.env.TEST_PG_DATA_DIR = server.dataDir
    if (!process.env.TEST_REPLICA_URL) {
      const replica = await startReplica(server)
      started.unshift({ stop: replica.remove })
      process.env.TEST_REPLICA_URL = replica.url
    }
  }
  if (!process.env.TEST_CLUSTER_B_URL) {
    const b = await startEmbeddedPostgres({ database: 'tenant_pools_test' })
    started.push(b)
    process.env.TEST_CLUSTER_B_URL = b.url
  }
}
