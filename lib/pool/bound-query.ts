// A binding and the caller's statement in one round trip: the statements that bind the session to
// the caller's scope (a full reset and rebind, or an assertion of its search_path) go out ahead of
// the statement. Whatever the ones ahead leave undone, the statement does not run: either it shares
// their implicit transaction (a failure anywhere rolls all of it back and skips the rest), or, with
// `commitFirst`, the binding is committed in a transaction of its own before the statement starts,
// and a failure in it aborts that transaction and skips the statement. Committed first, the binding
// also outlives a procedure or DO block whose own ROLLBACK would otherwise undo it mid-statement.
import { type Connection, Query, type QueryConfig, type QueryResult, type QueryResultRow } from 'pg'
import { hasComment, withoutComments } from './session'

// pg's Connection writes protocol messages; @types/pg does not declare these.
interface Wire {
  parse(message: { text: string; name: string; types: unknown[] }): void
  bind(message: { portal: string; statement: string; values: unknown[] }): void
  execute(message: { portal: string; rows: number }): void
  flush(): void
  stream: { cork?: () => void; uncork?: () => void }
}

// Statements that must not share an implicit transaction with the binding, or that pg's extended
// protocol cannot carry (several statements in one string): the binding goes in a round trip of its
// own instead. A spelling this misses still runs bound: the server refuses it inside the block.
const NOT_COMBINABLE =
  /;|^\s*(?:vacuum|analyze|begin|start|commit|end|rollback|abort|savepoint|release|prepare\s+transaction|create\s+database|drop\s+database|alter\s+system|create\s+tablespace|drop\s+tablespace|reindex|cluster|create\s+(?:unique\s+)?index\s+concurrently|drop\s+index\s+concurrently|refresh\s+materialized\s+view\s+concurrently|copy|call|do)\b/i

/** Whether `text` (with `values`) can ride behind a binding in one round trip. */
export const combinable = (text: string, values: unknown): boolean =>
  typeof text === 'string' &&
  (values === undefined || Array.isArray(values)) &&
  !NOT_COMBINABLE.test(text) &&
  !(hasComment(text) && NOT_COMBINABLE.test(withoutComments(text)))

class BoundQuery extends Query {
  readonly #binds: readonly string[]
  readonly #answerFirst: boolean
  // The CommandComplete (and DataRow) messages of the statements ahead come first; they are not
  // part of the caller's result.
  #skip: number

  constructor(
    binds: readonly string[],
    config: QueryConfig,
    answerFirst: boolean,
    callback: (err: Error | undefined, result: QueryResult) => void,
  ) {
    // Extended mode even without values: the binding and the statement must share one Sync.
    super({ ...config, queryMode: 'extended' } as ConstructorParameters<typeof Query>[0], callback)
    this.#binds = binds
    this.#skip = binds.length
    this.#answerFirst = answerFirst
  }

  override submit = (connection: Connection): Error | null => {
    const wire = connection as unknown as Wire
    wire.stream.cork?.()
    try {
      for (const text of this.#binds) {
        wire.parse({ text, name: '', types: [] })
        wire.bind({ portal: '', statement: '', values: [] })
        wire.execute({ portal: '', rows: 0 })
      }
      // An empty statement parsed, and a Flush: the server sends its ParseComplete (which pg takes
      // as any unnamed statement's) at once, after the binds ahead ran and before the statement
      // starts, so a live backend's first answer arrives within a round trip however long the
      // statement then runs.
      if (this.#answerFirst) {
        wire.parse({ text: '', name: '', types: [] })
        wire.flush()
      }
      // pg's own submit: Parse (unless already parsed), Bind, Describe, Execute, Sync. It refuses
      // (returns an error, writes nothing) only a query without text, with a name used for another
      // statement, or with values that are not an array. boundQuery lets none of them through: a
      // refusal here would leave the statements above without their Sync, and pg reading their
      // answers as the next query's (measured: "unexpected rowDescription message").
      return (Query.prototype as unknown as { submit(c: Connection): Error | null }).submit.call(
        this,
        connection,
      )
    } finally {
      wire.stream.uncork?.()
    }
  }

  handleCommandComplete(msg: unknown, connection: Connection): void {
    if (this.#skip > 0) {
      this.#skip--
      return
    }
    ;(
      Query.prototype as unknown as { handleCommandComplete(m: unknown, c: Connection): void }
    ).handleCommandComplete.call(this, msg, connection)
  }

  // The row of `SELECT pg_advisory_unlock_all()` in a reset, sent without a RowDescription.
  handleDataRow(msg: unknown): void {
    if (this.#skip > 0) return
    ;(Query.prototype as unknown as { handleDataRow(m: unknown): void }).handleDataRow.call(this, msg)
  }
}

/** `binds` in a transaction of their own, committed before whatever follows them starts. */
export const committedFirst = (binds: readonly string[]): string[] => ['BEGIN', ...binds, 'COMMIT']

/**
 * Runs `binds` (single statements) and then `query`, in one round trip: without values, as one
 * simple-protocol query string (an implicit transaction block, where a procedure cannot commit or
 * roll back); with values or a config, in the extended protocol up to one Sync. `commitFirst`: the
 * binds run in a transaction of their own, committed before the statement starts, so that their
 * effects (an UNLISTEN, say) are complete when it runs and no rollback of its own undoes them.
 * `answerFirst`: the server answers something as soon as it has read the whole message, before the
 * statement runs (the extended protocol then, always), so silence tells a dead or unreachable server
 * from a slow statement.
 */
export async function boundQuery<R extends QueryResultRow>(
  client: { query(q: Query): unknown; query(text: string): Promise<unknown> },
  binds: readonly string[],
  query: string | QueryConfig,
  values: unknown[] | undefined,
  commitFirst = false,
  answerFirst = false,
): Promise<QueryResult<R>> {
  const text = typeof query === 'string' ? query : query.text
  if (!combinable(text, values ?? (typeof query === 'string' ? undefined : query.values))) {
    throw new TypeError('boundQuery takes one combinable statement, with values in an array')
  }
  const ahead = commitFirst ? committedFirst(binds) : binds
  // One simple query is parsed whole before any of it runs: under the settings the session had
  // before, whose standard_conforming_strings may give a backslash in a literal another meaning.
  // A statement with a backslash goes in the extended protocol, parsed after the binds have run.
  if (
    !answerFirst &&
    typeof query === 'string' &&
    (values === undefined || values.length === 0) &&
    !text.includes('\\')
  ) {
    const results = (await client.query(`${ahead.join('; ')}; ${text}`)) as QueryResult<R>[]
    return results[results.length - 1] as QueryResult<R>
  }
  const config: QueryConfig = typeof query === 'string' ? { text, values } : { ...query }
  if (values !== undefined) config.values = values
  return new Promise((resolve, reject) => {
    client.query(
      new BoundQuery(ahead, config, answerFirst, (err, result) =>
        err ? reject(err) : resolve(result as QueryResult<R>),
      ),
    )
  })
}
