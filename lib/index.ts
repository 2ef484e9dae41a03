// The master schema's migrations (the tenant catalog TenantCatalog reads), for a project that uses
// the package to run with migrate(): they describe what this library reads, so they ship with it.
export { masterMigrations } from '../migrations/master'
export { defaults } from './config/defaults'
export { environmentVariables, libraryVariables, optionsFromEnv } from './config/env'
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
export { bodyLimit } from './http/body-limit'
export { httpErrors } from './http/http-errors'
export { jsonResponse } from './http/json-response'
export { invocationDeadline, type TenantContext, tenantDb } from './http/tenant-db'
export { type HttpAnswer, toHttp } from './http/to-http'
export { type SslMode, sslFor } from './pool/tls'
export { type ScopeRunner, type TenantHandle, TenantPgPool } from './registry/pg-pool-handle'
export { getTenantPools, resetTenantPools } from './registry/singleton'
export {
  type ClusterStats,
  type Counters,
  type LoginStats,
  MASTER_KEY,
  type PoolStats,
  TenantPools,
  type TenantPoolsStats,
} from './registry/tenant-pools'
export { isConnectionLost, isServerKill, sqlState, TENANT_FENCED } from './sqlstate'
export {
  TenantCatalog,
  type TenantCatalogOptions,
  type TenantPlacement,
  type TenantStatus,
} from './tenancy/catalog'
export { CHANGES, capturedTables, primaryKeyOf, startCapture, stopCapture } from './tenancy/change-log'
export { type LockRetryOptions, withLockRetries } from './tenancy/ddl-locks'
export { fence, tablesOf, unfence } from './tenancy/fence'
export { grantCatalogRead, grantTenantTraffic, lockGrants } from './tenancy/grants'
export { tablesInLoadOrder } from './tenancy/load-order'
export { type Migration, migrate } from './tenancy/migrate'
export { type PlacedDbOptions, placedDb } from './tenancy/placed-db'
export { assertTenantId, MAX_TENANT_ID_LENGTH, quoteIdent } from './tenancy/tenant-id'
export type {
  CallLimits,
  CallMeasure,
  Clock,
  Credentials,
  CredentialsProvider,
  CredentialsRequest,
  Log,
  ScopeOptions,
  TenantDb,
} from './types'
export { newCallMeasure } from './types'
