// The figures of busy moves as printed by the test and the bench: one line per move, and a summary
// of several moves (success rate; pause p50/max, refused writes, copy and move time p50 of the moves
// that succeeded).
import type { MoveRecord } from './busy-move'

/** The value at quantile `q` (0…1) of `values`, nearest rank; undefined for none. */
export function quantile(values: number[], q: number): number | undefined {
  if (values.length === 0) return undefined
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

const ms = (n: number | undefined): string => (n === undefined ? '-' : `${Math.round(n)} ms`)

/** One line: `#3 main→b 200 1234 ms (copy 800 ms, 20,417 rows): 12 refused over 950 ms, slowest ack 40 ms`. */
export function moveLine(m: MoveRecord): string {
  const answer = m.ok ? '200' : `${m.status ?? '-'} ${m.code}${m.cause ? ` (${m.cause})` : ''}`
  const copied = m.ok
    ? `copy ${ms(m.copyMs)}, fenced ${ms(m.fencedMs)}, ${m.rowsCopied?.toLocaleString('en')} rows`
    : 'no copy'
  const reported = Object.entries(m.reported).map(([k, v]) => `${k} ${ms(v)}`)
  return (
    `#${m.index + 1} ${m.from}→${m.to} ${answer} ${ms(m.durationMs)} (${[copied, ...reported].join(', ')}): ` +
    `${m.refused} refused over ${ms(m.pauseMs)}, ${m.acknowledged} acknowledged, slowest ack ${ms(m.slowestAckMs)}`
  )
}

/** Several moves: the figures are of those that succeeded (a failed move is counted in `failures`). */
export interface MoveSummary {
  moves: number
  succeeded: number
  pauseP50Ms?: number
  pauseMaxMs?: number
  refusedP50?: number
  refusedMax?: number
  copyP50Ms?: number
  fencedP50Ms?: number
  moveP50Ms?: number
  /** The slowest acknowledged write during any move, failed ones included. */
  slowestAckMaxMs?: number
  /** The codes of the moves that failed, counted. */
  failures: Record<string, number>
  /** Report timings (pauseMs, copyMs …), p50 each, when the move reports them. */
  reportedP50: Record<string, number | undefined>
}

export function summarize(moves: MoveRecord[]): MoveSummary {
  const ok = moves.filter((m) => m.ok)
  const p50 = (f: (m: MoveRecord) => number | undefined) =>
    quantile(
      ok.flatMap((m) => f(m) ?? []),
      0.5,
    )
  const max = (f: (m: MoveRecord) => number | undefined) =>
    quantile(
      ok.flatMap((m) => f(m) ?? []),
      1,
    )
  const failures: Record<string, number> = {}
  for (const m of moves.filter((x) => !x.ok)) failures[m.code ?? '-'] = (failures[m.code ?? '-'] ?? 0) + 1
  const keys = [...new Set(ok.flatMap((m) => Object.keys(m.reported)))]
  return {
    moves: moves.length,
    succeeded: ok.length,
    pauseP50Ms: p50((m) => m.pauseMs),
    pauseMaxMs: max((m) => m.pauseMs),
    refusedP50: p50((m) => m.refused),
    refusedMax: max((m) => m.refused),
    copyP50Ms: p50((m) => m.copyMs),
    fencedP50Ms: p50((m) => m.fencedMs),
    moveP50Ms: p50((m) => m.durationMs),
    slowestAckMaxMs: quantile(
      moves.map((m) => m.slowestAckMs),
      1,
    ),
    failures,
    reportedP50: Object.fromEntries(keys.map((k) => [k, p50((m) => m.reported[k])])),
  }
}

/** The summary as one row of console.table. */
export function summaryRow(s: MoveSummary): Record<string, string> {
  return {
    'moves ok': `${s.succeeded}/${s.moves}`,
    'pause p50 / max': `${ms(s.pauseP50Ms)} / ${ms(s.pauseMaxMs)}`,
    'refused p50 / max': `${s.refusedP50 ?? '-'} / ${s.refusedMax ?? '-'}`,
    'copy p50': ms(s.copyP50Ms),
    'fenced p50': ms(s.fencedP50Ms),
    'move p50': ms(s.moveP50Ms),
    'slowest ack': ms(s.slowestAckMaxMs),
    failures:
      Object.entries(s.failures)
        .map(([c, n]) => `${n}×${c}`)
        .join(' ') || '-',
    ...Object.fromEntries(Object.entries(s.reportedP50).map(([k, v]) => [`${k} p50`, ms(v)])),
  }
}
