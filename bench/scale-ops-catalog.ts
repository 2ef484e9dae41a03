// bench:scale-ops, the tenant catalog cache (lib/placement/catalog.ts) of one environment holding
// every tenant: the V8 heap it adds, measured as the difference of heapUsed after a full collection
// (node --expose-gc) before and after placement() was answered for each tenant. A fresh catalog per
// trial, after two unmeasured ones; the median of the trials.
import { TenantCatalog, type TenantPools } from '../lib'
import { summarize } from './timing'

export interface CatalogMemory {
  tenants: number
  trials: number
  totalKB: number
  bytesPerTenant: number
}

const collect = () => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) throw new Error('run with node --expose-gc (npm run bench:scale-ops does)')
  // Twice: the first collection may leave what finalizers free for the second.
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

export async function catalogMemory(
  pools: TenantPools,
  tenants: number,
  idOf: (i: number) => string,
  trials = 5,
): Promise<CatalogMemory> {
  const deltas: number[] = []
  // Every catalog is kept until the end: one dropped is not always collected by the next trial's
  // first measure (something still refers to it), and would then be subtracted from the next one.
  const held: TenantCatalog[] = []
  // The first trials pay for one-off allocations (the code paths compiled, the master scope's
  // buffers grown): measured after them.
  const warmUps = 2
  for (let t = 0; t < warmUps + trials; t++) {
    const before = collect()
    const catalog = new TenantCatalog(() => pools, { maxEntries: tenants + 1 })
    held.push(catalog)
    // Each id a string made here, as a request's id is made from its JWT: the cache keeps it, and
    // it is counted. 50 look-ups at a time, as concurrent requests would share the master scope.
    for (let i = 0; i < tenants; i += 50) {
      const batch = Array.from({ length: Math.min(50, tenants - i) }, (_, k) =>
        catalog.placement(idOf(i + k)),
      )
      await Promise.all(batch)
    }
    const after = collect()
    if (catalog.cached(idOf(tenants - 1))?.status !== 'active')
      throw new Error('the catalog cached no tenant')
    if (t >= warmUps) deltas.push(after - before)
  }
  const median = summarize(deltas).median
  return {
    tenants,
    trials,
    totalKB: +(median / 1024).toFixed(1),
    bytesPerTenant: Math.round(median / tenants),
  }
}
