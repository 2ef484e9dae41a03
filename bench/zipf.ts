// Zipf tenant traffic for the benchmarks (s = 1.1 unless told): a few tenants get most of the requests.

/** A seeded generator in [0, 1): replays the same sequence on every run (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Picks `${prefix}${i}` for i in [0, tenants) with Zipf(`s`) weights, drawing from `random`. */
export function zipfTenants(
  tenants: number,
  prefix: string,
  random: () => number = Math.random,
  s = 1.1,
): () => string {
  const weights = Array.from({ length: tenants }, (_, i) => 1 / (i + 1) ** s)
  const total = weights.reduce((a, b) => a + b, 0)
  const cumulative: number[] = []
  let sum = 0
  for (const w of weights) {
    sum += w / total
    cumulative.push(sum)
  }
  return () => {
    const r = random()
    // The last sum may round below 1: a draw above it is the last tenant's.
    const i = cumulative.findIndex((c) => c >= r)
    return `${prefix}${i === -1 ? tenants - 1 : i}`
  }
}
