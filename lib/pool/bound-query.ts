// A rebind and the caller's statement in one round trip: the SETs that bind the session to the
// caller's scope go out ahead of the statement, in the extended protocol, with one Sync at the end.
// Up to that Sync the server runs them as one implicit transaction: if a SET fails, the statement
// is skipped; if the statement fails, the SETs are rolled back and the session keeps its old
// binding. Either way no statement ever runs in another scope's schema.
import { type Connection, Query, type QueryResult, type QueryResultRow } from 'pg'
import { hasComment, withoutComments } from './session'

// pg's Connection writes protocol messages; @types/pg does not declare these.
interface Wire {
  parse(message: { text: string; name: string; types: unknown[] }): void
  bind(message: { portal: string; statement: string; values: unknown[] }): void
  execute(message: { portal: string; rows: number }): void
  stream: { cork?: () => void; uncork?: () => void }
}

// Statements that must not share an implicit transaction with the SETs, or that pg's extended
// protocol cannot carry (several statements in one string): they are rebound in a round trip of
// their own instead.
const NOT_COMBINABLE =
  /;|^\s*(?:vacuum|analyze|begin|start|commit|end|rollback|abort|savepoint|release|prepare\s+transaction|create\s+database|drop\s+database|alter\s+system|create\s+tablespace|drop\s+tablespace|reindex|cluster|create\s+(?:unique\s+)?index\s+concurrently|drop\s+index\s+concurrently|refresh\s+materialized\s+view\s+concurrently|copy)\b/i

/** Whether `text` (with `values`) can ride behind a rebind in one round trip. */
export const combinable = (text: string, values: unknown): boolean =>
  typeof text === 'string' &&
  (values === undefined || Array.isArray(values)) &&
  !NOT_COMBINABLE.test(text) &&
  !(hasComment(text) && NOT_COMBINABLE.test(withoutComments(text)))

class BoundQuery extends Query {
  readonly #binds: string[]
  // The SETs' CommandComplete messages come first; they are not part of the caller's result.
  #skip: number

  constructor(
    binds: string[],
    text: string,
    values: unknown[] | undefined,
    callback: (err: Error | undefined, result: QueryResult) => void,
  ) {
    // Extended mode even without values: the SETs and the statement must share one Sync.
    super({ text, values, queryMode: 'extended' } as ConstructorParameters<typeof Query>[0], callback)
    this.#binds = binds
    this.#skip = binds.length
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
      // pg's own submit: Parse (unless already parsed), Bind, Describe, Execute, Sync. It refuses
      // (returns an error, writes nothing) only a query without text, with a name used for another
      // statement, or with values that are not an array. boundQuery lets none of them through: a
      // refusal here would leave the SETs above without their Sync, and pg reading their answers
      // as the next query's (measured: "unexpected rowDescription message").
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
}

/**
 * Runs `binds` (single statements, no result rows) and then `text`, in one round trip. Without
 * values, as one simple-protocol query string, which the server also runs as one implicit
 * transaction; with values, in the extended protocol up to one Sync.
 */
export async function boundQuery<R extends QueryResultRow>(
  client: { query(q: Query): unknown; query(text: string): Promise<unknown> },
  binds: string[],
  text: string,
  values: unknown[] | undefined,
): Promise<QueryResult<R>> {
  if (!combinable(text, values)) {
    throw new TypeError('boundQuery takes one combinable statement, with values in an array')
  }
  if (values === undefined || values.length === 0) {
    const results = (await client.query(`${binds.join('; ')}; ${text}`)) as QueryResult<R>[]
    return results[results.length - 1] as QueryResult<R>
  }
  return new Promise((resolve, reject) => {
    client.query(
      new BoundQuery(binds, text, values, (err, result) =>
        err ? reject(err) : resolve(result as QueryResult<R>),
      ),
    )
  })
}
