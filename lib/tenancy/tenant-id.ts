// Tenant and app ids end up in schema names, application_name and pool keys, so they are checked
// before anything touches the database. The pattern is deliberately narrow.
import { escapeIdentifier } from 'pg'
import { InvalidTenantError } from '../errors'

/**
 * PostgreSQL truncates identifiers at 63 bytes; 48 leaves room for a `tenant_` style prefix.
 *
 * @example
 * if (id.length > MAX_TENANT_ID_LENGTH) throw new HttpError(400, 'BAD_TENANT', 'Tenant id too long')
 */
export const MAX_TENANT_ID_LENGTH = 48
export const MAX_APP_LENGTH = 32
const MAX_IDENTIFIER_BYTES = 63

const idPattern = /^[a-z0-9_]+$/
// A length check and one anchored regex: no schema library needed on the hottest path.
const isId = (value: unknown, max: number): boolean =>
  typeof value === 'string' && value.length >= 1 && value.length <= max && idPattern.test(value)

/**
 * The message never echoes the input: it may be 10 KB of hostile text.
 *
 * @example
 * assertTenantId(event.pathParameters?.tenant) // throws InvalidTenantError unless 1–48 of a-z, 0-9, _
 * await pools.evict(event.pathParameters.tenant)
 */
export function assertTenantId(value: unknown): asserts value is string {
  if (!isId(value, MAX_TENANT_ID_LENGTH)) {
    throw new InvalidTenantError(
      `Invalid tenant id: use 1 to ${MAX_TENANT_ID_LENGTH} characters from a-z, 0-9 and _`,
    )
  }
}

export function assertApp(value: unknown): asserts value is string {
  if (!isId(value, MAX_APP_LENGTH)) {
    throw new InvalidTenantError(
      `Invalid app name: use 1 to ${MAX_APP_LENGTH} characters from a-z, 0-9 and _`,
    )
  }
}

/** Checks what a (possibly user-supplied) schemaFor returned before it is used as an identifier. */
export function assertSchemaName(value: unknown): asserts value is string {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    Buffer.byteLength(value) > MAX_IDENTIFIER_BYTES ||
    value.includes('\0')
  ) {
    throw new InvalidTenantError('schemaFor returned an unusable schema name (empty, NUL or over 63 bytes)')
  }
}

/**
 * An identifier quoted for SQL (pg's escapeIdentifier): for schema, table and role names, which
 * cannot be bound as values.
 *
 * @example
 * await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(pools.schemaOf('acme'))}`)
 */
export const quoteIdent = (name: string): string => escapeIdentifier(name)

/** The registry key: `tenantId` or `tenantId:app`. */
export const poolKey = (tenantId: string, app?: string): string => (app ? `${tenantId}:${app}` : tenantId)
