// npm run bench:scale-limits (issue 30): the p50 that any client could reach on bench:scale's
// traffic when no backend may serve more than maxSchemasPerConnection schemas. Bare pg.Clients, no
// library: every design sends the same two statements per request (SET search_path, then the
// SELECT), so only where a request lands differs, that is, whether its backend's catalog cache
// already holds the schema, and how often serial requests move between backends. The designs:
// - one backend, unbounded: a shared pg.Pool serving one request at a time (the baseline);
// - one backend retired when it reaches the bound (tenant-pools' default);
// - 1, 2 or 3 backends kept once full (taking no new schema), and one more that takes the new
//   schemas and is retired at the bound (keepFullConnection keeps one);
// - the schemas hashed over the budget's backends, each retired at the bound, and the same without
//   the bound (what spreading alone costs).
// Same tenants, sequence and blocks as bench:scale; a retired backend's replacement is opened within
// the next request's time, as tenant-pools does. Writes bench/results/scale-limits-<timestamp>.json.
// Not a test: the machines are noisy.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Client } from 'pg'
import { defaults, optionsFromEnv, quoteIdent, TenantPools } from '../lib'
import { freshBackendKb, privateKb } from './backend-memory'
import { count } from './env-count'
import { progress } from './progress'
import { type Answer, MARKER, SELECT, startScaleServer, TENANTS, tenantId } from './scale-tenants'
import { summarize } from './timing'
import { seededRandom, zipfTenants } from './zipf'

const REQUESTS = count('BENCH_SCALE_REQUESTS', 12_000)
// Read as the library reads it (the variable bench:scale's tenant-pools applies too); 0, no bound,
// leaves nothing to compare.
const BOUND = optionsFromEnv(process.env).maxSchemasPerConnection ?? defaults.maxSchemasPerConnection
if (BOUND === 0)
  throw new Error(
    'bench:scale-limits compares designs under a bound: TENANT_POOLS_MAX_SCHEMAS_PER_CONNECTION must be at least 1',
  )
const BUDGET = defaults.budget
const ZIPF_S = 1.0
const WARM_UP = 200
const BLOCK = 100
const P50_TARGET = 1.1

/** One backend: its client (opened on first use) and the schemas it has served. */
interface Backend {
  client?: Client
  pid?: number
  served: Set<string>
  peakKb: number
}

interface Design {
  name: string
  bounded: boolean
  /** Which of `backends` serves `schema`. */
  route: (schema: string, backends: Backend[]) => number
  /** Whether the backend at `index`, having reached the bound, is kept rather than retired. */
  keeps: (index: number) => boolean
  backends: number
}

// FNV-1a: a stable spread of schema names over the backends.
const hashOf = (s: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return h >>> 0
}

const keeping = (kept: number): Design => ({
  name: `${kept} kept once full + 1 taking new schemas`,
  bounded: true,
  backends: kept + 1,
  // The backend that served the schema; else a keeper not yet full; else the last one.
  route: (schema, backends) => {
    const served = backends.findIndex((b) => b.served.has(schema))
    if (served !== -1) return served
    const open = backends.findIndex((b, i) => i < kept && b.served.size < BOUND)
    return open !== -1 ? open : kept
  },
  keeps: (i) => i < kept,
})

const hashed = (bounded: boolean): Design => ({
  name: `hashed over ${BUDGET} backends${bounded ? ', each retired at the bound' : ', unbounded'}`,
  bounded,
  backends: BUDGET,
  route: (schema) => hashOf(schema) % BUDGET,
  keeps: () => false,
})

const DESIGNS: Design[] = [
  {
    name: 'one backend, unbounded (a shared pool)',
    bounded: false,
    backends: 1,
    route: () => 0,
    keeps: () => false,
  },
  {
    name: 'one backend, retired at the bound',
    bounded: true,
    backends: 1,
    route: () => 0,
    keeps: () => false,
  },
  ...[1, 2, 3].filter((k) => k < BUDGET).map(keeping),
  hashed(true),
  hashed(false),
]

const mb = (kb: number) => +(kb / 1024).toFixed(1)

async function main(): Promise<void> {
  const scale = await startScaleServer()
  const { url } = scale
  try {
    const fresh = await freshBackendKb(url)
    // The schema of each tenant as tenant-pools names it (no connection is opened for that).
    const naming = new TenantPools({ connectionString: url })
    const schemas = new Map(
      Array.from({ length: TENANTS }, (_, i) => [tenantId(i), naming.schemaOf(tenantId(i))]),
    )
    await naming.end()
    const schemaOf = (t: string) => schemas.get(t) as string

    const sequence = Array.from({ length: REQUESTS }, zipfTenants(TENANTS, 'sc', seededRandom(42), ZIPF_S))
    const state = DESIGNS.map((d) =>
      Array.from({ length: d.backends }, (): Backend => ({ served: new Set(), peakKb: 0 })),
    )
    const opened = DESIGNS.map(() => 0)
    const all = DESIGNS.map(() => [] as number[])
    const cold = DESIGNS.map(() => [] as number[])
    const warm = DESIGNS.map(() => [] as number[])
    const wrong = DESIGNS.map(() => 0)
    const moves = DESIGNS.map(() => 0)
    const last = DESIGNS.map(() => -1)

    const request = async (i: number, t: string, timed: boolean) => {
      const d = DESIGNS[i] as Design
      const backends = state[i] as Backend[]
      const schema = schemaOf(t)
      const k = d.route(schema, backends)
      const b = backends[k] as Backend
      const wasCold = !b.served.has(schema)
      const start = process.hrtime.bigint()
      if (!b.client) {
        b.client = new Client({ connectionString: url, application_name: 'sc-limits' })
        await b.client.connect()
        opened[i] = (opened[i] ?? 0) + 1
      }
      await b.client.query(`SET search_path TO ${quoteIdent(schema)}`)
      const answer = (await b.client.query<Answer>(SELECT, [MARKER])).rows[0]
      const ms = Number(process.hrtime.bigint() - start) / 1e6
      b.served.add(schema)
      b.pid = answer?.pid
      if (!timed) return
      all[i]?.push(ms)
      ;(wasCold ? cold : warm)[i]?.push(ms)
      if (answer?.customer !== t) wrong[i] = (wrong[i] ?? 0) + 1
      if (last[i] !== -1 && last[i] !== k) moves[i] = (moves[i] ?? 0) + 1
      last[i] = k
      // Retired at the release that reached the bound, its peak memory read first (untimed).
      if (d.bounded && !d.keeps(k) && b.served.size >= BOUND) {
        b.peakKb = Math.max(b.peakKb, privateKb(b.pid ?? 0) ?? 0)
        await b.client.end()
        backends[k] = { served: new Set(), peakKb: b.peakKb }
      }
    }

    progress(`warm-up: ${WARM_UP} requests on the hottest tenant per design`)
    for (const [i] of DESIGNS.entries())
      for (let n = 0; n < WARM_UP; n++) await request(i, tenantId(0), false)
    progress(`${REQUESTS} requests per design, ${DESIGNS.length} designs, bound ${BOUND}, budget ${BUDGET}`)
    for (let blk = 0; blk * BLOCK < REQUESTS; blk++) {
      const block = sequence.slice(blk * BLOCK, (blk + 1) * BLOCK)
      for (let j = 0; j < DESIGNS.length; j++) {
        const i = (blk + j) % DESIGNS.length
        for (const t of block) await request(i, t, true)
      }
      if (((blk + 1) * BLOCK) % 2_000 === 0) progress(`  ${(blk + 1) * BLOCK} of ${REQUESTS}`)
    }
    for (const backends of state) {
      for (const b of backends) {
        b.peakKb = Math.max(b.peakKb, privateKb(b.pid ?? 0) ?? 0)
        await b.client?.end()
      }
    }

    const base = summarize(all[0] ?? []).median
    const baseWarm = summarize(warm[0] ?? []).median
    const table = DESIGNS.map((d, i) => {
      const p50 = summarize(all[i] ?? []).median
      const peak = Math.max(...(state[i] as Backend[]).map((b) => b.peakKb))
      return {
        design: d.name,
        backends: d.backends,
        p50ms: +p50.toFixed(3),
        p50VsOneUnbounded: +(p50 / base).toFixed(3),
        warmP50VsOneUnbounded: +(summarize(warm[i] ?? []).median / baseWarm).toFixed(3),
        coldShare: +((cold[i]?.length ?? 0) / REQUESTS).toFixed(3),
        movedBackend: +((moves[i] ?? 0) / REQUESTS).toFixed(3),
        largestBackendMB: peak ? mb(peak) : null,
        vsFresh: peak && fresh ? +(peak / fresh).toFixed(2) : null,
        newSessionsPer1000: +((((opened[i] ?? 0) - d.backends) * 1_000) / REQUESTS).toFixed(2),
        wrong: wrong[i] ?? 0,
      }
    })
    console.log(
      `scale-limits: ${TENANTS} tenant schemas, ${REQUESTS} requests per design one at a time, Zipf(${ZIPF_S}) ` +
        `(${new Set(sequence).size} distinct), blocks of ${BLOCK}; bare pg.Clients, SET search_path + SELECT each; ` +
        `bound ${BOUND} schemas per backend, budget ${BUDGET}; a fresh backend ${fresh === undefined ? 'unreadable' : `${mb(fresh)} MB`}`,
    )
    console.table(table)
    const bounded = table.filter((_, i) => DESIGNS[i]?.bounded)
    const best = bounded.reduce((a, b) => (b.p50VsOneUnbounded < a.p50VsOneUnbounded ? b : a))
    console.log(
      `best bounded design: ${best.design}, p50 ${best.p50VsOneUnbounded}x one unbounded backend ` +
        `(bench:scale's target for tenant-pools: <= ${P50_TARGET}x), ${best.coldShare * 100}% of requests on a cold cache`,
    )
    const at = new Date().toISOString()
    const dir = join(__dirname, 'results')
    mkdirSync(dir, { recursive: true })
    const file = join(dir, `scale-limits-${at.replace(/[:.]/g, '-')}.json`)
    writeFileSync(
      file,
      `${JSON.stringify({ at, node: process.version, server: scale.server, tenants: TENANTS, requests: REQUESTS, bound: BOUND, budget: BUDGET, freshBackendKB: fresh ?? null, rows: table }, null, 2)}\n`,
    )
    console.log(`wrote ${file}`)
  } finally {
    await scale.stop()
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
