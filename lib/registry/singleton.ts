// The module-level registry: one per execution environment (per worker thread on Lambda Managed
// Instances), built on first use and kept across warm invocations.
import { optionsFromEnv } from '../config/env'
import type { TenantPoolsOptions } from '../config/options'
import { TenantPools } from './tenant-pools'

let instance: TenantPools | undefined

/**
 * Returns this environment's registry, building it from environment variables on the first call.
 * `overrides` apply only to that first build (a credentials provider, a logger …).
 *
 * @example
 * const pools = getTenantPools()
 * const { rows } = await pools.query('acme', 'SELECT * FROM orders WHERE id = $1', [id])
 */
export function getTenantPools(overrides: TenantPoolsOptions = {}): TenantPools {
  instance ??= new TenantPools({ ...optionsFromEnv(), ...overrides })
  return instance
}

/**
 * Ends and forgets the registry, for tests. The next getTenantPools() builds a new one.
 *
 * @example
 * afterEach(async () => {
 *   await resetTenantPools()
 * })
 */
export async function resetTenantPools(): Promise<void> {
  const current = instance
  instance = undefined
  await current?.end()
}
