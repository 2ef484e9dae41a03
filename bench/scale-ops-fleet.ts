// bench:scale-ops, the fleet view at thousands of tenants: the server's total backend memory when E
// environments serve them, each with tenant-pools (defaults) or with one shared pg.Pool (max: the
// same budget) and SET search_path per request. The environments are simulated in this process (a
// registry or a pool each, under an application_name of its own): the server's memory depends on
// the backends' traffic, not on where their clients run. Each environment serves its own Zipf(1.0)
// sequence one request at a time, as a Lambda environment does; the environments and the two designs
// take turns in bursts. Backend memory is the `Anonymous:` line of smaps_rollup, summed over a
// design's backends, sampled every few bursts and at the end.
import { type Client, Pool } from 'pg'
import { defaults, quoteIdent, TenantPools } from '../lib'
import { backendsKb } from './backend-memory'
import { progress } from './progress'
import { silent } from './silent-log'
import { seededRandom, zipfTenants } from './zipf'

const BURST = 5
const SAMPLE_EVERY_ROUNDS = 20
const SELECT = 'SELECT customer FROM orders WHERE id = $1'
const ORDER_ID = '00000000-0000-4000-8000-000000000001'

export interface FleetDesign {
  design: string
  backendsAtEnd: number
  /** Sum of the design's backends' private memory, MB: the largest sample, and at the end. */
  peakTotalMB: number
  endTotalMB: number
  largestBackendMB: number
  newSessions: number
}

export interface FleetView {
  environments: number
  requestsPerEnvironment: number
  tenants: number
  distinctTenantsPerEnvironment: number
  freshBackendMB: number | null
  designs: FleetDesign[]
}

interface Env {
  request: (tenant: string) => Promise<unknown>
  opened: () => number
  end: () => Promise<void>
}

function ours(url: string, k: number): Env {
  const pools = new TenantPools({
    connectionString: url,
    logger: silent,
    applicationNamePrefix: `so-ours-e${k}`,
  })
  return {
    request: (t) => pools.query(t, SELECT, [ORDER_ID]),
    opened: () => pools.stats().counters.connectionsOpened,
    end: () => pools.end(),
  }
}

function sharedPool(url: string, k: number, schemaOf: (t: string) => string): Env {
  const pool = new Pool({ connectionString: url, max: defaults.budget, application_name: `so-pool-e${k}` })
  pool.on('error', () => {})
  let opened = 0
  pool.on('connect', () => opened++)
  return {
    request: async (t) => {
      const c = await pool.connect()
      try {
        await c.query(`SET search_path TO ${quoteIdent(schemaOf(t))}`)
        return await c.query(SELECT, [ORDER_ID])
      } finally {
        c.release()
      }
    },
    opened: () => opened,
    end: () => pool.end(),
  }
}

const mb = (kb: number) => +(kb / 1024).toFixed(1)

export async function fleetView(
  url: string,
  monitor: Client,
  o: { environments: number; requests: number; tenants: number; prefix: string; freshKb?: number },
  schemaOf: (t: string) => string,
): Promise<FleetView> {
  const designs = [
    { name: 'tenant-pools (defaults)', pattern: 'so-ours-e%', envs: [] as Env[] },
    { name: `shared pg.Pool (max ${defaults.budget}) + SET`, pattern: 'so-pool-e%', envs: [] as Env[] },
  ]
  for (let k = 0; k < o.environments; k++) {
    designs[0]?.envs.push(ours(url, k))
    designs[1]?.envs.push(sharedPool(url, k, schemaOf))
  }
  // Each environment its own sequence (its own seed); both designs replay the same ones.
  const sequences = Array.from({ length: o.environments }, (_, k) =>
    Array.from({ length: o.requests }, zipfTenants(o.tenants, o.prefix, seededRandom(1_000 + k), 1.0)),
  )
  const distinct = sequences.reduce((n, s) => n + new Set(s).size, 0) / o.environments
  const peak = designs.map(() => 0)
  const largest = designs.map(() => 0)
  const sample = async () => {
    const totals: number[] = []
    for (const [i, d] of designs.entries()) {
      const kbs = await backendsKb(monitor, d.pattern)
      const total = kbs.reduce((a, b) => a + b, 0)
      peak[i] = Math.max(peak[i] ?? 0, total)
      largest[i] = Math.max(largest[i] ?? 0, ...kbs)
      totals.push(total)
    }
    return totals
  }
  const rounds = Math.ceil(o.requests / BURST)
  progress(`fleet view: ${o.environments} environments x ${o.requests} requests per design, ${rounds} rounds`)
  try {
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < o.environments; k++) {
        const burst = sequences[k]?.slice(r * BURST, (r + 1) * BURST) ?? []
        // The designs alternate who goes first, so that machine noise hits both alike.
        for (let j = 0; j < designs.length; j++) {
          const env = designs[(r + j) % designs.length]?.envs[k] as Env
          for (const t of burst) await env.request(t)
        }
      }
      if ((r + 1) % SAMPLE_EVERY_ROUNDS === 0) await sample()
      if ((r + 1) % 100 === 0) progress(`  round ${r + 1} of ${rounds}`)
    }
    const end = await sample()
    const counts = await Promise.all(designs.map((d) => backendsKb(monitor, d.pattern)))
    return {
      environments: o.environments,
      requestsPerEnvironment: o.requests,
      tenants: o.tenants,
      distinctTenantsPerEnvironment: Math.round(distinct),
      freshBackendMB: o.freshKb === undefined ? null : mb(o.freshKb),
      designs: designs.map((d, i) => ({
        design: d.name,
        backendsAtEnd: counts[i]?.length ?? 0,
        peakTotalMB: mb(peak[i] ?? 0),
        endTotalMB: mb(end[i] ?? 0),
        largestBackendMB: mb(largest[i] ?? 0),
        newSessions: d.envs.reduce((n, e) => n + e.opened(), 0),
      })),
    }
  } finally {
    for (const d of designs) await Promise.all(d.envs.map((e) => e.end()))
  }
}
