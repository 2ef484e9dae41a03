// Moving a busy tenant, measured: writers create orders through the API handler (the functions'
// own registry, built from the environment as in Lambda) while another environment moves the tenant
// back and forth between clusters main and b with moveTenant. Per move it keeps the answer, the
// time, the writes refused meanwhile and when; after each move and at the end it checks, straight on
// the servers, that every acknowledged write is where the catalog says and nowhere else.
// Shared by test/functions/admin/move.busy.test.ts and `npm run bench:move`, so both measure one thing.
import { migrateMaster, provisionTenant } from '../../functions/admin/provision'
import { TenantCatalog, TenantPools } from '../../lib'
import { answerCounts, placementProblems, unexpectedAnswers } from './busy-checks'
import { type MoveRecord, type Mover, timedMove } from './busy-mover'
import { acknowledged, type Handler, refusedForMove, startWriters, type Write } from './busy-writers'
import { clusterBUrl, databaseUrl, onServer, sleep, uniqueTenant } from './db'
import { memoryLog } from './memory-log'
import { seedOrders } from './move-check'

export type { MoveRecord } from './busy-mover'

/** What the runs need of the functions, loaded once the environment is set. */
export interface BusyModules {
  create: Handler
  /** The functions' own resetTenantPools: ends their registry. */
  resetTenantPools(): Promise<void>
}

export interface BusyEnvironmentOptions {
  /** Jest loads the sources; a plain node script a bundle (middy is ESM-only). */
  load: () => Promise<BusyModules>
  /** The most writers of any run: the functions' registry may hold that many connections per tenant. */
  maxWriters: number
  /** How long the functions' catalog keeps a placement: short, so that they follow a move quickly. */
  catalogTtlMs?: number
}

export interface BusyPlan {
  tenantId: string
  writers: number
  moves: number
  /** Writes flow this long before each move and after the last. */
  gapMs?: number
  backoffMs?: number
  thinkMs?: number
  /** Told as each move ends (its write figures are filled in at the end of the run). */
  onMove?: (move: MoveRecord) => void
}

export interface BusyRun {
  writers: number
  moves: MoveRecord[]
  writes: Write[]
  /** Answers by `status code`. */
  answers: Record<string, number>
  problems: {
    /** Acknowledged writes misplaced, refused writes that landed, claims or fences left. */
    placement: string[]
    /** Writes answered with anything but 201 or 503 TENANT_MOVING with Retry-After. */
    answers: string[]
    /** Writes refused for a move while no move ran. */
    outsideMoves: string[]
  }
}

export interface BusyEnvironment {
  /** A new tenant on cluster main with `orders` orders of one line each, analyzed. */
  tenant(orders: number): Promise<string>
  run(plan: BusyPlan): Promise<BusyRun>
  /** Ends both registries and restores the environment variables. */
  end(): Promise<void>
}

const defaults = { catalogTtlMs: 200, gapMs: 300 }

/** Sets the functions' environment, loads them, and builds the mover's registry and catalog. */
export async function busyEnvironment(options: BusyEnvironmentOptions): Promise<BusyEnvironment> {
  const o = { ...options, catalogTtlMs: options.catalogTtlMs ?? defaults.catalogTtlMs }
  const saved = { ...process.env }
  Object.assign(process.env, {
    DATABASE_URL: databaseUrl(),
    TENANT_POOLS_CLUSTERS: JSON.stringify({ b: { connectionString: clusterBUrl() } }),
    TENANT_CATALOG_TTL_MS: String(o.catalogTtlMs),
    // One environment standing for the writers' many: a connection each, on either cluster, and the master.
    TENANT_POOLS_MAX_PER_POOL: String(o.maxWriters),
    TENANT_POOLS_BUDGET: String(2 * o.maxWriters + 2),
    TENANT_POOLS_APP_NAME_PREFIX: 'busy-writers',
    TENANT_POOLS_TRUST_TENANT_HEADER: 'true',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
  })
  const { log } = memoryLog()
  const pools = new TenantPools({
    logger: log,
    connectionString: databaseUrl(),
    clusters: { b: { connectionString: clusterBUrl() } },
    applicationNamePrefix: 'busy-mover',
  })
  const mover = { pools, catalog: new TenantCatalog(() => pools), log }
  let modules: BusyModules | undefined
  try {
    await migrateMaster(pools)
    modules = await o.load()
  } catch (err) {
    await pools.end()
    process.env = saved
    throw err
  }
  const loaded = modules
  return {
    tenant: async (orders) => {
      const id = uniqueTenant('busy')
      await provisionTenant(pools, id, 'main')
      await seedOrders(id, orders)
      await onServer(databaseUrl(), (c) => c.query(`ANALYZE tenant_${id}.orders, tenant_${id}.order_lines`))
      return id
    },
    run: (plan) => runBusy(loaded.create, mover, { ...plan, gapMs: plan.gapMs ?? defaults.gapMs }),
    end: async () => {
      try {
        await loaded.resetTenantPools()
      } finally {
        await pools.end()
        process.env = saved
      }
    },
  }
}

async function runBusy(create: Handler, mover: Mover, plan: BusyPlan & { gapMs: number }): Promise<BusyRun> {
  const { tenantId, writers } = plan
  const schema = mover.pools.schemaOf(tenantId)
  const tag = `w${Date.now().toString(36)}`
  const load = startWriters({
    create,
    tenantId,
    writers,
    tag,
    backoffMs: plan.backoffMs,
    thinkMs: plan.thinkMs,
  })
  const moves: MoveRecord[] = []
  const placement: string[] = []
  try {
    for (let index = 0; index < plan.moves; index++) {
      await sleep(plan.gapMs)
      const move = await timedMove(mover, tenantId, index, writers)
      // No move runs now: the tenant's rows must be where the catalog says.
      move.problems = await placementProblems(tenantId, schema, tag, [...load.writes], Date.now())
      placement.push(...move.problems.map((p) => `after move ${index + 1}: ${p}`))
      moves.push(move)
      plan.onMove?.(move)
    }
    await sleep(plan.gapMs)
  } finally {
    await load.stop()
  }
  const writes = load.writes
  placement.push(...(await placementProblems(tenantId, schema, tag, writes, Number.POSITIVE_INFINITY)))
  for (const move of moves) Object.assign(move, writeFigures(move, writes))
  const refusedOutside = writes.filter((w) => refusedForMove(w) && !moves.some((m) => during(w, m)))
  return {
    writers,
    moves,
    writes,
    answers: answerCounts(writes),
    problems: {
      placement,
      answers: grouped(unexpectedAnswers(writes), moves),
      outsideMoves: refusedOutside.map(describeWrite),
    },
  }
}

const during = (w: Write, m: MoveRecord): boolean => w.startedAt <= m.endedAt && w.answeredAt >= m.startedAt

function writeFigures(move: MoveRecord, writes: Write[]) {
  const within = writes.filter((w) => during(w, move))
  const refused = within.filter(refusedForMove)
  const acked = within.filter(acknowledged)
  return {
    refused: refused.length,
    pauseMs:
      refused.length === 0
        ? 0
        : refused.reduce((t, w) => Math.max(t, w.answeredAt), 0) -
          refused.reduce((t, w) => Math.min(t, w.startedAt), Number.POSITIVE_INFINITY),
    acknowledged: acked.length,
    slowestAckMs: acked.reduce((t, w) => Math.max(t, w.answeredAt - w.startedAt), 0),
  }
}

const describeWrite = (w: Write): string =>
  `${w.reference}: ${w.status} ${w.code ?? ''}${w.status === 503 && !w.retryAfter ? ' (no Retry-After)' : ''}`.trim()

// Unexpected answers by status and code: how many, during which moves, and one reference.
function grouped(writes: Write[], moves: MoveRecord[]): string[] {
  const groups = new Map<string, { n: number; moves: Set<string>; example: string }>()
  for (const w of writes) {
    const key = describeWrite(w).slice(w.reference.length + 2)
    const g = groups.get(key) ?? { n: 0, moves: new Set<string>(), example: w.reference }
    const m = moves.find((x) => during(w, x))
    g.n++
    g.moves.add(m === undefined ? 'none' : String(m.index + 1))
    groups.set(key, g)
  }
  return [...groups].map(
    ([key, g]) => `${g.n}× ${key}, during moves ${[...g.moves].join(', ')} (e.g. ${g.example})`,
  )
}
