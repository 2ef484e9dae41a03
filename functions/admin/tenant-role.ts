// A tenant's own database role and its secret, so that the tenant's pools log in as a role that
// can only reach its schema. Idempotent: an existing secret keeps its password and the role is
// (re)aligned to it.
import { randomBytes } from 'node:crypto'
import { escapeIdentifier, escapeLiteral } from 'pg'
import { defaults, HttpError, lockGrants, SecretUnreadableError, type TenantPools } from '../../lib'
import {
  createSecret,
  deleteSecret,
  isRefusedRequest,
  isScheduledForDeletion,
  isSecretMissing,
  readRdsSecret,
  restoreSecret,
} from '../../lib/aws/secrets'
import { config } from '../shared/config'
import { scramVerifier } from './scram'

/** The registry's statement and idle-session timeouts, as this environment configures them. */
function sessionTimeouts(): { statementTimeoutMs: number; idleSessionTimeoutMs: number } {
  const { pools } = config()
  return {
    statementTimeoutMs: pools.statementTimeoutMs ?? defaults.statementTimeoutMs,
    idleSessionTimeoutMs: pools.idleSessionTimeoutMs ?? defaults.idleSessionTimeoutMs,
  }
}

/** The secret id of a tenant, from TENANT_POOLS_TENANT_SECRET_PATTERN (`…{tenantId}…`). */
export function tenantSecretId(tenantId: string): string {
  const pattern = config().TENANT_POOLS_TENANT_SECRET_PATTERN
  if (!pattern) {
    throw new HttpError(
      400,
      'ROLE_NOT_CONFIGURED',
      'Per-tenant roles need TENANT_POOLS_TENANT_SECRET_PATTERN (for example app/tenants/{tenantId})',
    )
  }
  return pattern.replaceAll('{tenantId}', tenantId)
}

// The password the tenant's secret holds, if it exists. A tenant deleted and created again within
// its secret's recovery window finds the secret scheduled for deletion: it is restored.
async function readPassword(secretId: string): Promise<string | undefined> {
  try {
    return (await readRdsSecret(secretId)).password
  } catch (err) {
    if (isSecretMissing(err)) return undefined
    if (!isRefusedRequest(err) || !(await isScheduledForDeletion(secretId))) throw err
  }
  await restoreSecret(secretId)
  return (await readRdsSecret(secretId)).password
}

// The tenant's password: the one its secret holds, or a new one stored first. Two admin calls racing
// (two environments) both end up with the stored one.
async function ensureSecret(secretId: string, username: string): Promise<string> {
  const existing = await readPassword(secretId)
  if (existing) return existing
  const password = randomBytes(24).toString('base64url')
  if (await createSecret(secretId, JSON.stringify({ engine: 'postgres', username, password })))
    return password
  const winner = await readPassword(secretId)
  if (!winner) throw new SecretUnreadableError(secretId, 'it exists but could not be read back')
  return winner
}

/**
 * Creates (or re-aligns) the tenant's role: login (a SCRAM verifier, never the password), its schema
 * only, and search_path, statement_timeout and idle_session_timeout set on the role.
 */
export async function ensureTenantRole(
  pools: TenantPools,
  tenantId: string,
): Promise<{ role: string; secretId: string }> {
  const schema = pools.schemaOf(tenantId)
  const role = schema
  const secretId = tenantSecretId(tenantId)
  const password = await ensureSecret(secretId, role)
  const r = escapeIdentifier(role)
  const s = escapeIdentifier(schema)
  await pools.master.transaction(async (c) => {
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`tenant-pools:role:${role}`])
    await lockGrants(c, schema)
    const { rowCount } = await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])
    // The verifier, never the password: DDL may be logged (log_statement=ddl).
    const verifier = escapeLiteral(scramVerifier(password))
    await c.query(`${rowCount ? 'ALTER' : 'CREATE'} ROLE ${r} LOGIN PASSWORD ${verifier}`)
    await c.query(`GRANT USAGE ON SCHEMA ${s} TO ${r}`)
    await c.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${s} TO ${r}`)
    await c.query(
      `ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${r}`,
    )
    // Behind RDS Proxy (proxy-safe mode) the schema and timeouts can only come from the role: a
    // runaway statement must not outlive the invocation, and a frozen environment's sessions must
    // still be ended by the server. The same values as the startup packet sends otherwise.
    await c.query(`ALTER ROLE ${r} SET search_path = ${s}`)
    const { statementTimeoutMs, idleSessionTimeoutMs } = sessionTimeouts()
    await c.query(`ALTER ROLE ${r} SET statement_timeout = ${escapeLiteral(`${statementTimeoutMs}ms`)}`)
    await c.query(`ALTER ROLE ${r} SET idle_session_timeout = ${escapeLiteral(`${idleSessionTimeoutMs}ms`)}`)
  })
  return { role, secretId }
}

/** Whether the tenant has a role of its own (left behind, too, by a deprovisioning cut short). */
export async function tenantRoleExists(pools: TenantPools, tenantId: string): Promise<boolean> {
  const { rowCount } = await pools.master.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [
    pools.schemaOf(tenantId),
  ])
  return rowCount === 1
}

/**
 * Deprovisioning: schedules the tenant role's secret for deletion, revokes what the role was granted
 * and drops it, then ends its sessions. A tenant without a role of its own has no more to do. The
 * role goes last: until it has, a retry finds it and does it all again (each step can be repeated),
 * so a deprovisioning cut short never leaves a role or a secret behind for good.
 */
export async function dropTenantRole(
  pools: TenantPools,
  tenantId: string,
): Promise<{ role: string } | undefined> {
  const schema = pools.schemaOf(tenantId)
  const role = schema
  const r = escapeIdentifier(role)
  const s = escapeIdentifier(schema)
  const exists = await tenantRoleExists(pools, tenantId)
  // Also without a role: a provisioning cut short between the secret and the role left one.
  if (config().TENANT_POOLS_TENANT_SECRET_PATTERN) {
    await deleteSecret(tenantSecretId(tenantId))
  }
  if (!exists) return undefined
  const dropped = await pools.master.transaction(async (c) => {
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`tenant-pools:role:${role}`])
    await lockGrants(c, schema)
    const { rowCount } = await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])
    if (!rowCount) return false
    await c.query(`ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} REVOKE ALL ON TABLES FROM ${r}`)
    await c.query(`REVOKE ALL ON ALL TABLES IN SCHEMA ${s} FROM ${r}`)
    await c.query(`REVOKE ALL ON SCHEMA ${s} FROM ${r}`)
    await c.query(`DROP ROLE ${r}`)
    return true
  })
  // Its live sessions (in other environments) end too. Needs pg_signal_backend; without it they
  // fail at their next statement, having lost every grant.
  await pools.master
    .query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role])
    .catch(() => undefined)
  return dropped ? { role } : undefined
}
