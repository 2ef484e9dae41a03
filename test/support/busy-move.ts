// Moving a busy tenant, measured: writers create orders through the API handler (the functions'
// own registry, built from the environment as in Lambda) while another environment moves the tenant
// back and forth between clusters main and b with moveTenant. Per move it keeps the answer, the
// time, the writes refused meanwhile and when; after each move and at the end it checks, straight on
// the servers, that every acknowledged write is where the catalog says and nowhere else.
// Shared by test/integration/move-busy.test.ts and `npm run bench:move`, so both measure one thing.
import { type MoveReport, moveTenant } from '../../functions/admin/move'
import { migrateMaster, provisionTenant } from '../../functions/admin/provision'
import { TenantCatalog, TenantPools } from '../../lib'
import { answerCounts, placementProblems, unexpectedAnswers } from './busy-checks'
import { acknowledged, type Handler, refusedForMove, startWriters, type Write } from './busy-writers'
import { clusterBUrl, databaseUrl, onServer, sleep, uniqueTenant } from './db'
import { memoryLog } from './memory-log'
import { catalogRow, seedOrders } from './move-check'

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

/** One move, as the mover and the writers saw it. Times are Date.now() milliseconds. */
export interface MoveRecord {
  index: number
  writers: number
  from: string
  to: string
  startedAt: number
  endedAt: number
  durationMs: number
  ok: boolean
  /** A failed move: its HttpError's status and code, message and cause. */
  status?: number
  code?: string
  message?: string
  cause?: string
  /** Rows copied (report.tables), for a move that succeeded. */
  rowsCopied?: number
  /** Numeric `…Ms` fields of the report besides durationMs (pauseMs, copyMs … if the move reports them). */
  reported: Record<string, number>
  /** When each step (MoveOptions.onStep) was told, in ms from the start. */
  steps: Array<{ step: string; atMs: number }>
  /** The report's copyMs, else from the steps: the mark before the first 'copy' to 'verify'. */
  copyMs?: number
  /** From the steps: 'fence' to 'flip', while the fence stood on the source (server side). */
  fencedMs?: number
  /** Writes refused with 503 TENANT_MOVING while the move ran. */
  refused: number
  /** From the first refused write's start to the last one's answer; 0 if none was refused. */
  pauseMs: number
  acknowledged: number
  /** The slowest acknowledged write while the move ran: a write held back rather than refused. */
  slowestAckMs: number
  /** What the check after the move found wrong. */
  problems: string[]
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
      await loaded.resetTenantPools().catch(() => {})
      await pools.end()
      process.env = saved
    },
  }
}

interface Mover {
  pools: TenantPools
  catalog: TenantCatalog
  log: ReturnType<typeof memoryLog>['log']
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
      const move = await moveOnce(mover, tenantId, index, writers)
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

async function moveOnce(mover: Mover, tenantId: string, index: number, writers: number): Promise<MoveRecord> {
  const from = String((await catalogRow(tenantId))?.cluster)
  const to = from === 'main' ? 'b' : 'main'
  const steps: MoveRecord['steps'] = []
  const startedAt = Date.now()
  const base = { index, writers, from, to, startedAt, steps, reported: {}, problems: [] }
  const figures = { refused: 0, pauseMs: 0, acknowledged: 0, slowestAckMs: 0 }
  try {
    const report = await moveTenant(mover.pools, mover.catalog, tenantId, to, mover.log, {
      onStep: (step) => {
        steps.push({ step, atMs: Date.now() - startedAt })
      },
    })
    const endedAt = Date.now()
    const reported = timingsOf(report)
    return {
      ...base,
      ...figures,
      endedAt,
      durationMs: endedAt - startedAt,
      ok: true,
      rowsCopied: report.tables.reduce((n, t) => n + t.rows, 0),
      reported,
      copyMs: reported.copyMs ?? copyFromSteps(steps),
      fencedMs: between(steps, 'fence', 'flip'),
    }
  } catch (err) {
    const endedAt = Date.now()
    const e = err as { status?: number; code?: string; message?: string; cause?: unknown }
    const cause = e.cause as { code?: string; message?: string } | undefined
    return {
      ...base,
      ...figures,
      endedAt,
      durationMs: endedAt - startedAt,
      ok: false,
      status: e.status,
      code: e.code ?? 'THROWN',
      message: String(e.message),
      cause: cause === undefined ? undefined : `${cause.code ?? ''} ${cause.message ?? ''}`.trim(),
    }
  }
}

/**
 * The report's own timings, whatever the move comes to report: every number named `…Ms` but
 * durationMs, at the top level or in an object of phases.
 */
function timingsOf(report: MoveReport): Record<string, number> {
  const out: Record<string, number> = {}
  const collect = (o: object, prefix: string) => {
    for (const [key, value] of Object.entries(o)) {
      if (typeof value === 'number' && key.endsWith('Ms') && key !== 'durationMs') out[prefix + key] = value
      else if (value !== null && typeof value === 'object' && !Array.isArray(value) && prefix === '')
        collect(value, `${key}.`)
    }
  }
  collect(report, '')
  return out
}

// The copy runs from the step before its first table ('fence' now, 'claim' for a copy first) to 'verify'.
function copyFromSteps(steps: MoveRecord['steps']): number | undefined {
  const first = steps.findIndex((s) => s.step === 'copy')
  const verify = steps.find((s) => s.step === 'verify')
  const before = steps[first - 1]
  return first > 0 && before && verify ? verify.atMs - before.atMs : undefined
}

// From the first `from` step to the last `to` step, if both were told.
function between(steps: MoveRecord['steps'], from: string, to: string): number | undefined {
  const start = steps.find((s) => s.step === from)
  const end = steps.findLast((s) => s.step === to)
  return start && end ? end.atMs - start.atMs : undefined
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
