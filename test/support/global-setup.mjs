// Starts what the whole jest run needs, unless the environment names it already:
// - DATABASE_URL: the main cluster (with TLS);
// - TEST_REPLICA_URL: a streaming replica of it (only when the main cluster is ours);
// - TEST_CLUSTER_B_URL: a second cluster, for tenants placed on another database;
// - TEST_PG15_URL: PostgreSQL 15 of Debian's packages (apt-get install -y postgresql-15), if installed:
//   many RDS fleets run 15 to 17, which do not report the search_path to the client as 18 does.
import { debianPostgresBin, startDebianPostgres } from '../../scripts/debian-postgres.mjs'
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
  if (!process.env.TEST_PG15_URL) {
    if (debianPostgresBin(15)) {
      const pg15 = await startDebianPostgres({ major: 15, database: 'tenant_pools_test' })
      started.push(pg15)
      process.env.TEST_PG15_URL = pg15.url
    } else {
      // Said where a reader of the run's output looks: the skip is not silent.
      process.stderr.write(
        'PostgreSQL 15 is not installed (/usr/lib/postgresql/15/bin): the PostgreSQL 15 runs are SKIPPED. ' +
          'Install it: apt-get install -y postgresql-15 (.ci/run does, as root)\n',
      )
    }
  }
}
