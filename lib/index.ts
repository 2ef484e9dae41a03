export { ConnectionBudget } from './budget'
export * from './credentials'
export {
  ConnectError,
  CredentialsError,
  InvalidOptionsError,
  InvalidTenantError,
  PoolExhaustedError,
  PoolsEndedError,
  SecretUnreadableError,
  TenantPoolsError,
} from './errors'
export { defaults, environmentVariables, optionsFromEnv, type TenantPoolsOptions } from './options'
export { getTenantPools, resetTenantPools } from './singleton'
export { isConnectionLost, isServerKill, sqlState } from './sqlstate'
export { assertTenantId, MAX_TENANT_ID_LENGTH, quoteIdent } from './tenant-id'
export { type Counters, MASTER_KEY, type PoolStats, TenantPools, type TenantPoolsStats } from './tenant-pools'
export { type SslMode, sslFor } from './tls'
export type {
  Clock,
  Credentials,
  CredentialsProvider,
  CredentialsRequest,
  Log,
  ScopeOptions,
  TenantDb,
} from './types'
