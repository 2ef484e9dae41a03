export { ConnectionBudget } from './budget'
export { TenantCatalog, type TenantCatalogOptions, type TenantStatus } from './catalog'
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
export { type Migration, migrate } from './migrate'
export { defaults, environmentVariables, optionsFromEnv, type TenantPoolsOptions } from './options'
export { getTenantPools, resetTenantPools } from './singleton'
export { isConnectionLost, isServerKill, sqlState } from './sqlstate'
export { assertTenantId, MAX_TENANT_ID_LENGTH, quoteIdent } from './tenant-id'
export { type Counters, MASTER_KEY, type PoolStats, TenantPools, type TenantPoolsStats } from './tenant-pools'
export { type SslMode, sslFor } from './tls'
export type {
  CallLimits,
  Clock,
  Credentials,
  CredentialsProvider,
  CredentialsRequest,
  Log,
  ScopeOptions,
  TenantDb,
} from './types'
