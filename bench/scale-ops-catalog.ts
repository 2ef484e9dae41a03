// bench:scale-ops, the tenant catalog cache (lib/placement/catalog.ts) of one environment holding
// every tenant: the V8 heap it adds, measured as the difference of heapUsed after a full collection
// (node --expose-gc) before and after placement() was answered for each tenant. A fresh catalog per
// trial; the median of the trials.
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
  trials = 3,
): Promise<CatalogMemory> {
  const deltas: number[] = []
  // The master connection and the query path warm before the first measure.
  await new TenantCatalog(() => pools).placement(idOf(0))
  for (let t = 0; t < trials; t++) {
    const before = collect()
    const catalog = new TenantCatalog(() => pools, { maxEntries: tenants + 1 })
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
    deltas.push(after - before)
  }
  const median = summarize(deltas).median
  return {
    tenants,
    trials,
    totalKB: +(median / 1024).toFixed(1),
    bytesPerTenant: Math.round(median / tenants),
  }
}
