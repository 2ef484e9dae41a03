// How the benches time a call and sum up the samples: the one place, so their figures compare.

export type Summary = { median: number; p99: number; n: number }

/** The median and the 99th percentile of `samples` (each the sample at that rank). */
export const summarize = (samples: number[]): Summary => {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number
  return { median: at(0.5), p99: at(0.99), n: sorted.length }
}

/** How long `fn` took, in milliseconds. */
export async function time(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - start) / 1e6
}
