// The master schema's migrations (the tenant catalog TenantCatalog reads), for a project that uses
// the package to run with migrate(): they describe what this library reads, so they ship with it.
export { masterMigrations } from '../migrations/master'
export { type TenantDb, type TenantHandle, TenantPgPool } from './adapters/pg-pool'
export { defaults } from './config/defaults'
export { environmentVariables, libraryVariables, optionsFromEnv, prewarmFromEnv } from './config/env'
export type {
  ClusterOptions,
  ConnectionSettings,
  ReaderOptions,
  TenantPoolsOptions,
} from './config/options'
export * from './credentials'
export {
  ConnectError,
  ConnectionLostError,
  CredentialsError,
  DeadlineExceededError,
  HttpError,
  InvalidOptionsError,
  InvalidTenantError,
  PoolExhaustedError,
  PoolsEndedError,
  SecretUnreadableError,
  StatementTimeoutError,
  TenantMovingError,
  TenantPoolsError,
  UnknownClusterError,
} from './errors'
export { bodyLimit } from './middy/body-limit'
export { httpErrors } from './middy/http-errors'
export { jsonResponse } from './middy/json-response'
export { invocationDeadline, type TenantContext, tenantDb } from './middy/tenant-db'
export { type HttpAnswer, toHttp } from './middy/to-http'
export {
  TenantCatalog,
  type TenantCatalogOptions,
  type TenantPlacement,
  type TenantStatus,
} from './placement/catalog'
export { CHANGES, capturedTables, primaryKeyOf, startCapture, stopCapture } from './placement/change-log'
export { type LockRetryOptions, withLockRetries } from './placement/ddl-locks'
export { fence, tablesOf, unfence } from './placement/fence'
export { grantCatalogRead, grantTenantTraffic, lockGrants } from './placement/grants'
export { rowTablesInLoadOrder, tablesInLoadOrder } from './placement/load-order'
export { type Migration, migrate } from './placement/migrate'
export { type PlacedDbOptions, placedDb } from './placement/placed-db'
export { type SslMode, sslFor } from './pool/tls'
export { getTenantPools, resetTenantPools } from './registry/singleton'
export {
  type ClusterStats,
  type ConnectionStats,
  type Counters,
  type LoginStats,
  MASTER_KEY,
  type PoolStats,
  type ScopeStats,
  TenantPools,
  type TenantPoolsStats,
} from './registry/tenant-pools'
export { isConnectionLost, isServerKill, sqlState, TENANT_FENCED } from './sqlstate'
export { assertTenantId, MAX_TENANT_ID_LENGTH, quoteIdent } from './tenancy/tenant-id'
export type {
  CallLimits,
  CallMeasure,
  Clock,
  Credentials,
  CredentialsProvider,
  CredentialsRequest,
  Log,
  PrewarmOptions,
  PrewarmOutcome,
  ScopeOptions,
} from './types'
export { newCallMeasure } from './types'
