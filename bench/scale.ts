// npm run bench:scale (issue 30): thousands of tenant schemas on one server, and what serving them
// costs each backend. The tenants come from bench/scale-tenants.ts (built through the admin path,
// cached between runs). Then BENCH_SCALE_REQUESTS (12,000) requests one at a time, Zipf(1.0) over
// the tenants, one SELECT from the tenant's orders by id each, through tenant-pools (defaults, TENANT_POOLS_*
// variables applied) and one shared pg.Pool (max: the same budget) with SET search_path per request,
// alternating in blocks so that machine noise hits both alike. Reports, per design: the largest
// backend's private memory (the `Anonymous:` line of /proc/<pid>/smaps_rollup, over the design's
// backends in pg_stat_activity) every 1,000 requests, against a fresh backend's; new sessions per
// 1,000 requests; p50 and p99; answers from a wrong schema; and the targets. Writes
// bench/results/scale-<timestamp>.json. Not a test: the machines are noisy.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Client, Pool } from 'pg'
import { defaults, optionsFromEnv, quoteIdent, TenantPools } from '../lib'
import { freshBackendKb, privateKb } from './backend-memory'
import { count } from './env-count'
import { progress } from './progress'
import {
  type Answer,
  MARKER,
  migrationVersion,
  SELECT,
  startScaleServer,
  TENANTS,
  tenantId,
} from './scale-tenants'
import { silent } from './silent-log'
import { summarize } from './timing'
import { seededRandom, zipfTenants } from './zipf'

const REQUESTS = count('BENCH_SCALE_REQUESTS', 12_000)
const ZIPF_S = 1.0
// Requests on the hottest tenant alone before the measured ones: the code paths warm, each design's
// first connection opened, and one schema touched.
const WARM_UP = 200
const BLOCK = 100
const SAMPLE_EVERY = 1_000
const BUDGET = defaults.budget

const TARGETS = { memoryRatio: 4, sessionsPer1000: 20, p50Ratio: 1.1, wrong: 0 }

// ---- the designs ----

interface Design {
  name: string
  /** application_name of its backends, as a LIKE pattern. */
  appName: string
  request: (tenant: string) => Promise<Answer | undefined>
  /** New server sessions it has opened so far. */
  opened: () => number
  /** The most distinct schemas one of its connections has served (tenant-pools only). */
  widest?: () => number
  retired?: () => number
  /** Checkouts, those that rebound a connection to another scope, and scopes created (tenant-pools only). */
  churn?: () => { checkouts: number; rebound: number; scopesCreated: number }
  end: () => Promise<void>
}

function designs(url: string): Design[] {
  // What this run changed of the defaults (TENANT_POOLS_KEEP_FULL_CONNECTION=true, say).
  const set = Object.keys(process.env).filter((k) => k.startsWith('TENANT_POOLS_'))
  const settings = set.length ? set.map((k) => `${k}=${process.env[k]}`).join(', ') : 'defaults'
  const pools = new TenantPools({
    ...optionsFromEnv(process.env),
    connectionString: url,
    logger: silent,
    applicationNamePrefix: 'sc-ours',
  })
  const shared = new Pool({ connectionString: url, max: BUDGET, application_name: 'sc-pool' })
  let sharedOpened = 0
  shared.on('connect', () => sharedOpened++)
  return [
    {
      name: `tenant-pools (${settings})`,
      appName: 'sc-ours:%',
      request: async (t) => (await pools.query<Answer>(t, SELECT, [MARKER])).rows[0],
      opened: () => pools.stats().counters.connectionsOpened,
      widest: () =>
        Math.max(0, ...pools.stats().logins.flatMap((l) => l.connections.map((c) => c.schemasServed))),
      retired: () => pools.stats().counters.connectionsRetiredBySchemas,
      churn: () => {
        const { checkouts, connectionsRebound, scopesCreated } = pools.stats().counters
        return { checkouts, rebound: connectionsRebound, scopesCreated }
      },
      end: () => pools.end(),
    },
    {
      name: `shared pg.Pool (max ${BUDGET}) + SET`,
      appName: 'sc-pool',
      request: async (t) => {
        const c = await shared.connect()
        try {
          await c.query(`SET search_path TO ${quoteIdent(pools.schemaOf(t))}`)
          return (await c.query<Answer>(SELECT, [MARKER])).rows[0]
        } finally {
          c.release()
        }
      },
      opened: () => sharedOpened,
      end: () => shared.end(),
    },
  ]
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const mb = (kb: number | undefined) => (kb === undefined ? null : +(kb / 1024).toFixed(1))
const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met')

async function main(): Promise<void> {
  const scale = await startScaleServer()
  const { url, built } = scale
  const admin = new Client({ connectionString: url, application_name: 'sc-monitor' })
  try {
    await admin.connect()
    const fresh = await freshBackendKb(url)
    const sessions = async () => {
      // Idle backends flush their statistics after about a second.
      await sleep(1_500)
      const { rows } = await admin.query<{ n: string }>(
        'SELECT sessions AS n FROM pg_stat_database WHERE datname = current_database()',
      )
      return Number(rows[0]?.n)
    }

    const sequence = Array.from({ length: REQUESTS }, zipfTenants(TENANTS, 'sc', seededRandom(42), ZIPF_S))
    const list = designs(url)
    // Each design's backends (from pg_stat_activity, again whenever the design has opened a
    // connection), and their private memory read after every request, untimed: a connection retired
    // by the bound is closed at the release of the request that reached it, so its peak is read at
    // the request before, one schema short of it.
    const pids = list.map(() => [] as number[])
    const known = list.map(() => -1)
    const backendsOf = async (i: number) => {
      const d = list[i] as Design
      if (known[i] === d.opened()) return pids[i] as number[]
      known[i] = d.opened()
      const { rows } = await admin.query<{ pid: number }>(
        'SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1',
        [d.appName],
      )
      pids[i] = rows.map((r) => r.pid)
      return pids[i] as number[]
    }
    const peakKb = list.map(() => 0)
    const largest = async (i: number) => {
      const kbs = (await backendsOf(i)).map(privateKb).filter((kb): kb is number => kb !== undefined)
      const kb = kbs.length ? Math.max(...kbs) : undefined
      if (kb !== undefined) peakKb[i] = Math.max(peakKb[i] ?? 0, kb)
      return kb
    }

    // The schemas each backend (by pid) has served: a request is the first of its schema on the
    // backend that answered it (its catalog cache cold for it) or not, split to show what a cold
    // cache costs.
    const seen = new Map<number, Set<string>>()
    const touched = (pid: number, t: string): boolean => {
      const schemas = seen.get(pid) ?? new Set<string>()
      seen.set(pid, schemas)
      if (schemas.has(t)) return true
      schemas.add(t)
      return false
    }
    progress(`warm-up: ${WARM_UP} requests on the hottest tenant per design`)
    for (const d of list) {
      for (let i = 0; i < WARM_UP; i++) {
        const answer = await d.request(tenantId(0))
        if (answer) touched(answer.pid, tenantId(0))
      }
    }
    const sessionsBefore = await sessions()
    const openedBefore = list.map((d) => d.opened())
    const latencies = list.map(() => [] as number[])
    const firstTouch = list.map(() => [] as number[])
    const warmTouch = list.map(() => [] as number[])
    const wrong = list.map(() => 0)
    const series: Array<Record<string, number | null>> = []
    const lastOpened = [...openedBefore]
    const sample = async (done: number) => {
      const row: Record<string, number | null> = { requests: done }
      for (const [i, d] of list.entries()) {
        const tag = i === 0 ? 'ours' : 'pool'
        known[i] = -1 // a fresh look at pg_stat_activity
        row[`${tag}LargestMB`] = mb(await largest(i))
        row[`${tag}Backends`] = (pids[i] as number[]).length
        row[`${tag}NewSessions`] = d.opened() - (lastOpened[i] ?? 0)
        lastOpened[i] = d.opened()
        if (d.widest) row[`${tag}WidestSchemas`] = d.widest()
      }
      series.push(row)
    }
    await sample(0)

    progress(`${REQUESTS} requests per design, Zipf(${ZIPF_S}) over ${TENANTS} tenants, blocks of ${BLOCK}`)
    for (let b = 0; b * BLOCK < REQUESTS; b++) {
      const block = sequence.slice(b * BLOCK, (b + 1) * BLOCK)
      for (let k = 0; k < list.length; k++) {
        const i = (b + k) % list.length
        const d = list[i] as Design
        for (const t of block) {
          const start = process.hrtime.bigint()
          const answer = await d.request(t)
          const ms = Number(process.hrtime.bigint() - start) / 1e6
          latencies[i]?.push(ms)
          if (answer?.customer !== t) wrong[i] = (wrong[i] ?? 0) + 1
          const split = answer && touched(answer.pid, t) ? warmTouch : firstTouch
          split[i]?.push(ms)
          await largest(i)
        }
      }
      const done = Math.min(REQUESTS, (b + 1) * BLOCK)
      if (done % SAMPLE_EVERY === 0 || done === REQUESTS) await sample(done)
      if (done % (SAMPLE_EVERY * 2) === 0) progress(`  ${done} of ${REQUESTS}`)
    }
    const opened = list.map((d, i) => d.opened() - (openedBefore[i] ?? 0))
    const widest = list[0]?.widest?.()
    const retired = list[0]?.retired?.() ?? 0
    const churn = list[0]?.churn?.()
    await Promise.all(list.map((d) => d.end()))
    const serverSessions = (await sessions()) - sessionsBefore
    const distinct = new Set(sequence).size

    const rows = list.map((d, i) => {
      const s = summarize(latencies[i] ?? [])
      return {
        design: d.name,
        p50ms: +s.median.toFixed(3),
        p99ms: +s.p99.toFixed(3),
        newSessionsPer1000: +(((opened[i] ?? 0) * 1_000) / REQUESTS).toFixed(2),
        largestBackendMB: peakKb[i] ? mb(peakKb[i]) : null,
        vsFresh: peakKb[i] && fresh ? +((peakKb[i] ?? 0) / fresh).toFixed(2) : null,
        wrongSchemaAnswers: wrong[i] ?? 0,
        firstTouchShare: +((firstTouch[i]?.length ?? 0) / REQUESTS).toFixed(3),
        firstTouchP50ms: +summarize(firstTouch[i] ?? []).median.toFixed(3),
        warmP50ms: +summarize(warmTouch[i] ?? []).median.toFixed(3),
      }
    })
    const ours = rows[0] as (typeof rows)[number]
    const pool = rows[1] as (typeof rows)[number]
    const bound = optionsFromEnv(process.env).maxSchemasPerConnection ?? defaults.maxSchemasPerConnection
    // The shared pool's one backend (served one at a time, it never opens a second) touches every
    // tenant of the sequence: its growth over a fresh backend, per schema.
    const kbPerSchema =
      fresh && peakKb[1] && opened[1] === 0 ? +(((peakKb[1] ?? 0) - fresh) / distinct).toFixed(1) : null

    console.log(
      `scale: ${TENANTS} tenant schemas (orders migrations to ${migrationVersion}, analyzed); ` +
        (built.cached
          ? `built ${built.builtAt} (cached): `
          : `built now${built.provisioned < TENANTS ? ` (${TENANTS - built.provisioned} were there)` : ''}: `) +
        `${built.provisioned} provisioned through the admin path in ${built.provisionSeconds.toFixed(1)} s = ` +
        `${built.tenantsPerSecond.toFixed(1)} tenants/s, marker orders and ANALYZE ${built.seedAndAnalyzeSeconds.toFixed(1)} s`,
    )
    console.log(
      `${REQUESTS} requests per design one at a time, Zipf(${ZIPF_S}) (${distinct} distinct tenants), ` +
        `after ${WARM_UP} of warm-up, alternating in blocks of ${BLOCK}; maxSchemasPerConnection ${bound}; ` +
        `a fresh backend's private memory ${fresh === undefined ? 'unreadable here' : `${mb(fresh)} MB`}`,
    )
    console.table(rows)
    console.log('largest backend (MB), its design’s backends and new sessions, every 1,000 requests:')
    console.table(series)
    console.log(
      `tenant-pools: ${retired} connections retired by the bound, the widest at the end had served ${widest} schemas; ` +
        `${churn?.rebound} of ${churn?.checkouts} checkouts rebound a connection to another scope, ${churn?.scopesCreated} scopes created (maxScopes ${defaults.maxScopes}); ` +
        `server sessions during the run ${serverSessions} (designs' own count: ${opened.join(' + ')})` +
        (kbPerSchema === null ? '' : `; shared pool: ${kbPerSchema} KB per schema over a fresh backend`),
    )
    const memoryRatio = ours.vsFresh
    const p50Ratio = ours.p50ms / pool.p50ms
    const targets = {
      largestBackendVsFresh: {
        value: memoryRatio,
        target: `<= ${TARGETS.memoryRatio}`,
        met: memoryRatio !== null && memoryRatio <= TARGETS.memoryRatio,
      },
      newSessionsPer1000: {
        value: ours.newSessionsPer1000,
        target: `<= ${TARGETS.sessionsPer1000}`,
        met: ours.newSessionsPer1000 <= TARGETS.sessionsPer1000,
      },
      p50VsSharedPool: {
        value: +p50Ratio.toFixed(3),
        target: `<= ${TARGETS.p50Ratio}`,
        met: p50Ratio <= TARGETS.p50Ratio,
      },
      wrongSchemaAnswers: {
        value: ours.wrongSchemaAnswers,
        target: `${TARGETS.wrong}`,
        met: ours.wrongSchemaAnswers === TARGETS.wrong,
      },
    }
    console.log(
      `targets (tenant-pools): largest backend <= ${TARGETS.memoryRatio}x a fresh one: ${memoryRatio ?? 'unmeasured'}x, ${verdict(targets.largestBackendVsFresh.met)}; ` +
        `new sessions per 1,000 <= ${TARGETS.sessionsPer1000}: ${ours.newSessionsPer1000}, ${verdict(targets.newSessionsPer1000.met)}; ` +
        `p50 <= ${TARGETS.p50Ratio}x the shared pool: ${ours.p50ms} vs ${pool.p50ms} ms = ${p50Ratio.toFixed(2)}x, ${verdict(targets.p50VsSharedPool.met)}; ` +
        `wrong-schema answers 0: ${ours.wrongSchemaAnswers}, ${verdict(targets.wrongSchemaAnswers.met)}`,
    )

    const at = new Date().toISOString()
    const dir = join(__dirname, 'results')
    mkdirSync(dir, { recursive: true })
    const file = join(dir, `scale-${at.replace(/[:.]/g, '-')}.json`)
    writeFileSync(
      file,
      `${JSON.stringify(
        {
          at,
          node: process.version,
          server: scale.server,
          tenants: TENANTS,
          requests: REQUESTS,
          warmUp: WARM_UP,
          block: BLOCK,
          zipf: ZIPF_S,
          distinctTenants: distinct,
          maxSchemasPerConnection: bound,
          build: built,
          freshBackendKB: fresh ?? null,
          rows,
          series,
          tenantPools: { retiredBySchemas: retired, widestAtEnd: widest, ...churn },
          serverSessions,
          sharedPoolKbPerSchema: kbPerSchema,
          targets,
        },
        null,
        2,
      )}\n`,
    )
    console.log(`wrote ${file}`)
  } finally {
    await admin.end().catch(() => {})
    await scale.stop()
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
