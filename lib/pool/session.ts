// A clean session for every caller: what a connection's session is reset to before another scope
// (or, after withClient or transaction, anyone) uses it, in one round trip.
import { type Client, escapeLiteral } from 'pg'
import { quoteIdent } from '../tenancy/tenant-id'

/**
 * Everything DISCARD ALL clears, except that DISCARD ALL refuses to run in a multi-statement query
 * (an implicit transaction block): cursors, SET SESSION AUTHORIZATION and SET ROLE, every setting
 * (back to the role's and the startup packet's values), prepared statements, LISTEN, session
 * advisory locks, cached sequence values and temporary tables (whose schema comes first in any
 * search_path, so a temp table could shadow the next tenant's table).
 */
const DISCARD_EVERYTHING = [
  'CLOSE ALL',
  'SET SESSION AUTHORIZATION DEFAULT',
  'RESET ALL',
  'DEALLOCATE ALL',
  'UNLISTEN *',
  'SELECT pg_advisory_unlock_all()',
  'DISCARD SEQUENCES',
  'DISCARD TEMP',
].join('; ')

/** One session's binding: the schema its search_path selects, and the name it shows in pg_stat_activity. */
export interface Binding {
  schema: string
  applicationName: string
  /** Sessions refuse writes (a read-only scope served by a writer). */
  readOnly?: boolean
}

/**
 * The statements that bind a clean session to `binding`, one by one (the extended protocol takes one
 * per message); joined by `; ` they make one simple query (ScopeUse.bindSql). Two SETs in one query
 * cost what one SET does (measured: a SELECT of set_config() is dearer), which is all a shared
 * pool's SET search_path costs.
 */
export function bindStatements(binding: Binding): string[] {
  const statements = [
    `SET search_path TO ${quoteIdent(binding.schema)}`,
    `SET application_name TO ${escapeLiteral(binding.applicationName)}`,
  ]
  // Only read-only bindings set it: leaving one takes a full reset (ScopeUse.leavesSettings), so the
  // others never pay for a third SET.
  if (binding.readOnly) statements.push('SET default_transaction_read_only TO on')
  return statements
}

/** Discards whatever a caller left in the session and binds it (`bind`: ScopeUse.bindSql), in one round trip. */
export function resetSql(bind: string): string {
  return `${DISCARD_EVERYTHING}; ${bind}`
}

/**
 * resetSql, from a read-only session: its connection may have started read-only (the startup
 * packet's value, which RESET ALL returns to), so a writing binding gets its writes back explicitly.
 */
export function resetFromReadOnlySql(bind: string, readOnly: boolean): string {
  return readOnly ? resetSql(bind) : `${resetSql(bind)}; SET default_transaction_read_only TO off`
}

/**
 * Proxy-safe mode: no SET (a proxy pins or refuses it) and nothing else to bind, since the role
 * carries the search_path. DISCARD ALL alone, as PgBouncer's own server_reset_query.
 */
export const PROXY_SAFE_RESET_SQL = 'DISCARD ALL'

/**
 * pg remembers which named statements it has prepared on a connection and skips the Parse next
 * time. After DEALLOCATE ALL that memory is false: it is cleared with the server's. pg offers no
 * public way to do so; these are the fields its Query consults.
 */
export function forgetPreparedStatements(client: Client): void {
  const connection = (
    client as unknown as {
      connection?: {
        parsedStatements?: Record<string, string>
        submittedNamedStatements?: Record<string, string>
      }
    }
  ).connection
  if (!connection) return
  connection.parsedStatements = {}
  connection.submittedNamedStatements = {}
}

// Statements that leave state in the session: SET / RESET / DISCARD / LISTEN / PREPARE / DECLARE
// at the start of a statement, and anywhere: set_config, advisory locks, temporary tables.
const SESSION_CHANGING =
  /(?:^|;)\s*(?:set|reset|discard|listen|unlisten|prepare|deallocate|declare|load)\b|\bset_config\s*\(|\bpg_advisory_lock|\bpg_try_advisory_lock|\btemp(?:orary)?\s+(?:table|view|sequence)\b|\binto\s+temp/i

/**
 * Whether a statement run through `query()` may have changed its session, so that the connection
 * is reset before its next use. A change hidden in a function's body is not seen: run such calls
 * with withClient or transaction, which always reset.
 */
export function maybeChangesSession(text: string): boolean {
  const known = seen.get(text)
  if (known !== undefined) return known
  const changes =
    SESSION_CHANGING.test(text) || (hasComment(text) && SESSION_CHANGING.test(withoutComments(text)))
  if (typeof text === 'string' && text.length <= MAX_SEEN_LENGTH) {
    // Bounded: statements with their values inlined cannot grow it for ever (cleared, not evicted).
    if (seen.size >= MAX_SEEN_STATEMENTS) seen.clear()
    seen.set(text, changes)
  }
  return changes
}

// The answers so far, by statement text: an application runs the same few statements over and over,
// and a map look-up costs less than the scan. At most 1,000 statements of at most 4,096 characters.
const MAX_SEEN_STATEMENTS = 1_000
const MAX_SEEN_LENGTH = 4_096
const seen = new Map<string, boolean>()

/** Cheap first look: most statements have no comment, and need no second pass. */
export const hasComment = (text: string): boolean => text.includes('--') || text.includes('/*')

/**
 * `text` with its SQL comments removed, so that a comment cannot hide a statement's first keyword
 * (`/* retry *\/ SET …`). Naive about string literals, so callers test both forms and take the
 * more cautious answer.
 */
export const withoutComments = (text: string): string =>
  text.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/--[^\n]*/g, ' ')
