// A clean session for every caller, bound to its scope: what a connection's session is reset to
// whenever it changes scope (or a caller may have left state in it), and how the binding is known
// to hold before each statement.
import { type Client, escapeLiteral } from 'pg'
import { quoteIdent } from '../tenancy/tenant-id'

/**
 * Everything DISCARD ALL clears, except that DISCARD ALL refuses to run in a multi-statement query
 * (an implicit transaction block): SET SESSION AUTHORIZATION and SET ROLE, every setting (back to
 * the role's and the startup packet's values), cursors, prepared statements, LISTEN, session
 * advisory locks, cached sequence values (lastval) and temporary relations, which a later caller
 * could otherwise read by a name its own schema lacks. The role and the settings go first, so that
 * a caller's tiny statement_timeout cannot fail the rest.
 */
export const DISCARD_STATEMENTS: readonly string[] = [
  'SET SESSION AUTHORIZATION DEFAULT',
  'RESET ALL',
  'CLOSE ALL',
  'DEALLOCATE ALL',
  'UNLISTEN *',
  'SELECT pg_advisory_unlock_all()',
  'DISCARD SEQUENCES',
  'DISCARD TEMP',
]

/** One session's binding: the schema its search_path selects, and the name it shows in pg_stat_activity. */
export interface Binding {
  schema: string
  applicationName: string
  /** Sessions refuse writes (a read-only scope served by a writer). */
  readOnly?: boolean
}

/**
 * The search_path of a binding: the schema, then the session's temporary schema. Left out, pg_temp
 * is searched first, and a temporary relation would shadow the schema's own relation of that name.
 */
export const searchPathOf = (schema: string): string => `${quoteIdent(schema)}, pg_temp`

/** The statement that points a session's search_path at `schema`, and nowhere else. */
export const searchPathStatement = (schema: string): string => `SET search_path TO ${searchPathOf(schema)}`

/**
 * The statements that bind a clean session to `binding`, one by one (the extended protocol takes one
 * per message); joined by `; ` they make one simple query. Two SETs in one query cost what one SET
 * does (measured: a SELECT of set_config() is dearer).
 */
export function bindStatements(binding: Binding): string[] {
  const statements = [
    searchPathStatement(binding.schema),
    `SET application_name TO ${escapeLiteral(binding.applicationName)}`,
  ]
  // Only read-only bindings set it: every other binding follows a RESET ALL, which clears it.
  if (binding.readOnly) statements.push('SET default_transaction_read_only TO on')
  return statements
}

/**
 * The statements that discard whatever a caller left in the session and bind it to `binding`.
 * `fromReadOnly`: the connection started read-only (its startup packet's value, which RESET ALL
 * returns to), so a writing binding gets its writes back explicitly.
 */
export function resetStatements(binding: Binding, fromReadOnly: boolean): string[] {
  const statements = [...DISCARD_STATEMENTS, ...bindStatements(binding)]
  if (fromReadOnly && !binding.readOnly) statements.push('SET default_transaction_read_only TO off')
  return statements
}

/**
 * Whether a search_path the server reported (ParameterStatus, PostgreSQL 18 and later) selects
 * exactly `schema`, then pg_temp. The list is parsed as the server parses it (unquoted names fold to
 * lower case, `""` inside quotes is one `"`), so its spelling does not matter.
 */
export function searchPathSelects(reported: string | undefined, schema: string): boolean {
  if (reported === undefined) return false
  const names = parseNameList(reported)
  return names?.length === 2 && names[0] === schema && names[1] === 'pg_temp'
}

// The server's own idea of both (scanner_isspace, downcase_identifier): ASCII only.
const SPACE = /[ \t\n\r\f\v]/
const lowerAscii = (name: string): string => name.replace(/[A-Z]/g, (c) => c.toLowerCase())

// A comma-separated list of identifiers, or undefined if `value` is not one.
function parseNameList(value: string): string[] | undefined {
  const names: string[] = []
  let i = 0
  const skipSpace = () => {
    while (i < value.length && SPACE.test(value.charAt(i))) i++
  }
  for (;;) {
    skipSpace()
    let name = ''
    if (value.charAt(i) === '"') {
      for (i++; ; i++) {
        if (i >= value.length) return undefined
        if (value.charAt(i) === '"') {
          if (value.charAt(i + 1) !== '"') break
          i++
        }
        name += value.charAt(i)
      }
      i++
    } else {
      while (i < value.length && value.charAt(i) !== ',' && !SPACE.test(value.charAt(i)))
        name += value.charAt(i++)
      if (name === '') return undefined
      name = lowerAscii(name)
    }
    names.push(name)
    skipSpace()
    if (i >= value.length) return names
    if (value.charAt(i) !== ',') return undefined
    i++
  }
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
 * Whether a statement run through `query()` may have left state in its session, so that the
 * connection is reset in full before its next use, even by the same scope. It only ever adds a
 * reset: isolation does not rest on it. Every change of scope resets in full, and the search_path
 * is verified or asserted before every statement, however the change was spelled or hidden.
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
