// The registry's defaults, tuned for Lambda: few connections per environment, closed quickly. The
// one place a default is written; options.ts merges over it, docs/configuration.md's table is checked
// against it.

/**
 * Defaults tuned for Lambda: few connections per environment, closed quickly.
 *
 * @example
 * import { defaults } from 'tenant-pools'
 * const pools = new TenantPools({ maxPerScope: defaults.maxPerScope + 1 })
 */
export const defaults = {
  schemaPrefix: 'tenant_',
  masterSchema: 'public',
  maxPerScope: 2,
  budget: 4,
  maxScopes: 32,
  idleTimeoutMs: 10_000,
  scopeTtlMs: 60_000,
  connectTimeoutMs: 3_000,
  maxLifetimeMs: 300_000,
  // A backend keeps a catalog cache entry for every relation it touched, in every schema, until it
  // exits (DISCARD ALL frees none): measured (issue 30) at 26 to 37 KB per distinct tenant schema
  // (the orders migration: 2 tables, 5 indexes), on top of a fresh backend's 2.2 to 3.4 MB. Keeping
  // each backend within 4x a fresh one allows (4 - 1) x fresh / k schemas: 254 with the smaller
  // pair, 275 with the larger. 225 leaves a tenth of the smaller (250 measured 4.01x once in
  // npm run bench:scale). 0: no bound.
  maxSchemasPerConnection: 225,
  // Off: a connection at the bound closes at its release, as the bound's name says. On, in
  // npm run bench:scale (Zipf over 1,500 tenants), 27% of requests met a cold catalog cache
  // instead of 46%.
  keepFullConnection: false,
  // Below API Gateway's 30 s integration timeout, so a runaway statement ends before the caller gives up.
  statementTimeoutMs: 25_000,
  // The server ends sessions idle this long: a frozen environment's connections die at the server.
  idleSessionTimeoutMs: 30_000,
  applicationNamePrefix: 'tenant-pools',
  proxySafe: false,
  // HikariCP checks connections idle longer than 500 ms; a Lambda thaw is always longer than that.
  validateAfterIdleMs: 1_000,
  sweepIntervalMs: 1_000,
  // Off by default, as in HikariCP: capturing the acquiring stack costs on every checkout.
  leakDetectionMs: 0,
  // A statement with no answer this long after the server's own statement_timeout should have ended
  // it is given up on client-side: the server is gone (failover, partition) or cannot cancel.
  statementTimeoutMarginMs: 1_000,
  // A liveness ping answers in a round trip; a third of the connect timeout is already generous.
  validationTimeoutMs: 1_000,
  // TCP keepalive on idle connections, so a vanished peer is found while idle where the OS allows.
  keepAliveInitialDelayMs: 5_000,
  // The cluster the top-level connection settings describe, and every scope's unless told otherwise.
  mainCluster: 'main',
  // A reader that could not be reached is not tried again for this long: its calls go to the writer.
  readerRetryAfterMs: 5_000,
} as const

/**
 * How long `prewarm()` (and TENANT_POOLS_PREWARM at init) may take by default, and at most: an
 * unreachable database or credentials store never holds an init longer than this.
 *
 * @example
 * await pools.prewarm({ timeoutMs: PREWARM_TIMEOUT_MS })
 */
export const PREWARM_TIMEOUT_MS = 1_000
/**
 * The most `prewarm()` may be given: past it, init would wait on work a request could do.
 *
 * @example
 * const timeoutMs = Math.min(PREWARM_MAX_TIMEOUT_MS, wanted)
 */
export const PREWARM_MAX_TIMEOUT_MS = 1_000
