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
  TenantPoolsError,
} from './errors'
export { bodyLimit } from './http/body-limit'
export { httpErrors } from './http/http-errors'
export { jsonResponse } from './http/json-response'
export { invocationDeadline, type TenantContext, tenantDb } from './http/tenant-db'
export { type HttpAnswer, toHttp } from './http/to-http'
export { defaults, environmentVariables, optionsFromEnv, type TenantPoolsOptions } from './options'
export { type SslMode, sslFor } from './pool/tls'
export { getTenantPools, resetTenantPools } from './registry/singleton'
export {
  type Counters,
  MASTER_KEY,
  type PoolStats,
  TenantPools,
  type TenantPoolsStats,
} from './registry/tenant-pools'
export { isConnectionLost, isServerKill, sqlState } from './sqlstate'
export { TenantCatalog, type TenantCatalogOptions, type TenantStatus } from './tenancy/catalog'
export { type Migration, migrate } from './tenancy/migrate'
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
