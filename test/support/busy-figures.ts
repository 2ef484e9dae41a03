// The figures of busy moves as printed by the test and the bench: one line per move, and a summary
// of several moves (success rate, pause p50/max, refused writes, copy and move time p50).
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
  const copied = m.ok ? `copy ${ms(m.copyMs)}, ${m.rowsCopied?.toLocaleString('en')} rows` : `no copy`
  const reported = Object.entries(m.reported).map(([k, v]) => `${k} ${ms(v)}`)
  return (
    `#${m.index + 1} ${m.from}→${m.to} ${answer} ${ms(m.durationMs)} (${[copied, ...reported].join(', ')}): ` +
    `${m.refused} refused over ${ms(m.pauseMs)}, ${m.acknowledged} acknowledged, slowest ack ${ms(m.slowestAckMs)}`
  )
}

export interface MoveSummary {
  moves: number
  succeeded: number
  pauseP50Ms?: number
  pauseMaxMs?: number
  refusedP50?: number
  refusedMax?: number
  copyP50Ms?: number
  moveP50Ms?: number
  slowestAckMaxMs?: number
  /** The codes of the moves that failed, counted. */
  failures: Record<string, number>
  /** Report timings (pauseMs, copyMs …), p50 each, when the move reports them. */
  reportedP50: Record<string, number | undefined>
}

export function summarize(moves: MoveRecord[]): MoveSummary {
  const pauses = moves.map((m) => m.pauseMs)
  const refused = moves.map((m) => m.refused)
  const failures: Record<string, number> = {}
  for (const m of moves.filter((x) => !x.ok)) failures[m.code ?? '-'] = (failures[m.code ?? '-'] ?? 0) + 1
  const keys = [...new Set(moves.flatMap((m) => Object.keys(m.reported)))]
  return {
    moves: moves.length,
    succeeded: moves.filter((m) => m.ok).length,
    pauseP50Ms: quantile(pauses, 0.5),
    pauseMaxMs: quantile(pauses, 1),
    refusedP50: quantile(refused, 0.5),
    refusedMax: quantile(refused, 1),
    copyP50Ms: quantile(
      moves.flatMap((m) => m.copyMs ?? []),
      0.5,
    ),
    moveP50Ms: quantile(
      moves.map((m) => m.durationMs),
      0.5,
    ),
    slowestAckMaxMs: quantile(
      moves.map((m) => m.slowestAckMs),
      1,
    ),
    failures,
    reportedP50: Object.fromEntries(
      keys.map((k) => [
        k,
        quantile(
          moves.flatMap((m) => m.reported[k] ?? []),
          0.5,
        ),
      ]),
    ),
  }
}

/** The summary as one row of console.table. */
export function summaryRow(s: MoveSummary): Record<string, string> {
  return {
    'moves ok': `${s.succeeded}/${s.moves}`,
    'pause p50 / max': `${ms(s.pauseP50Ms)} / ${ms(s.pauseMaxMs)}`,
    'refused p50 / max': `${s.refusedP50 ?? '-'} / ${s.refusedMax ?? '-'}`,
    'copy p50': ms(s.copyP50Ms),
    'move p50': ms(s.moveP50Ms),
    'slowest ack': ms(s.slowestAckMaxMs),
    failures:
      Object.entries(s.failures)
        .map(([c, n]) => `${n}×${c}`)
        .join(' ') || '-',
    ...Object.fromEntries(Object.entries(s.reportedP50).map(([k, v]) => [`${k} p50`, ms(v)])),
  }
}
