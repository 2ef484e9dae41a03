// Tenant isolation as a property (test/support/isolation-property.ts): whatever a tenant's caller
// runs, however spelled and wherever the change hides, the next caller reads and writes only its own
// schema and sees nothing another tenant left in the session. On the embedded PostgreSQL 18, which
// reports the search_path to the client, and on PostgreSQL 15, which does not.

import { figure } from '../support/figures'
import { checkIsolation } from '../support/isolation-property'
import { pg15Label } from '../support/skips'

// At least 500 runs per server and connection count in CI; `npm run bench:isolation` runs 10,000.
const RUNS = Number(process.env.ISOLATION_RUNS ?? 500)

const servers: Array<[string, string | undefined]> = [
  ['PostgreSQL 18 (embedded)', process.env.DATABASE_URL],
  [pg15Label('PostgreSQL 15 (Debian)'), process.env.TEST_PG15_URL],
]

describe.each(servers)('Property: tenant isolation on %s', (_, url) => {
  // Skipped only when the global setup could not start the server, and it said so on stderr.
  const run = url ? it : it.skip

  run.each([1, 2])(
    'holds over %i shared connection(s) and three tenants, through query, withClient and the pg.Pool handle',
    async (connections) => {
      const { runs, actions, attacks } = await checkIsolation({
        url: url as string,
        connections,
        numRuns: RUNS,
      })
      expect(runs).toBe(RUNS)
      expect(actions).toBeGreaterThan(RUNS * 2)
      // Attacks that never got through would prove nothing: most of their statements succeed.
      figure(JSON.stringify(attacks))
      expect(attacks.succeeded).toBeGreaterThan(attacks.failed)
    },
    600_000,
  )
})
