// One move of a busy tenant with moveTenant, timed: its answer, its report's figures and when each
// of its steps (MoveOptions.onStep) was told. The writes' figures are filled in by the run's end.
import { type MoveReport, moveTenant } from '../../functions/admin/move'
import type { Log, TenantCatalog, TenantPools } from '../../lib'
import { catalogRow } from './move-check'

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

/** The moving environment: a registry and catalog of its own, as an admin function's. */
export interface Mover {
  pools: TenantPools
  catalog: TenantCatalog
  log: Log
}

/** Moves the tenant to the other cluster than the catalog's; never throws for a failed move. */
export async function timedMove(
  mover: Mover,
  tenantId: string,
  index: number,
  writers: number,
): Promise<MoveRecord> {
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
