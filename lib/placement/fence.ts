// The fence of a moving tenant: a statement-level trigger on every table of its schema that refuses
// any write with SQLSTATE TPM01 before it changes a row. It lives in the database, so it holds for
// every environment, however stale its catalog cache: after a move, the old copy cannot take a write
// from anyone, and an acknowledged write can only have landed in the copy that is moved.
import type { ClientBase } from 'pg'
import { TENANT_FENCED } from '../sqlstate'
import { quoteIdent } from '../tenancy/tenant-id'
import { type LockRetryOptions, withLockRetries } from './ddl-locks'
import { tablesInLoadOrder } from './load-order'

export const FENCE = 'tenant_pools_fence'
/**
 * The change log of a move (change-log.ts): the mover's own, never fenced.
 *
 * @example
 * await client.query(`SELECT count(*) FROM ${quoteIdent(schema)}.${quoteIdent(CHANGES)}`)
 */
export const CHANGES = 'tenant_pools_changes'

/** The function every fence trigger runs: refuse the statement with TPM01. */
export const fenceFunction = (schema: string): string => {
  const s = quoteIdent(schema)
  return `CREATE OR REPLACE FUNCTION ${s}.${FENCE}() RETURNS trigger LANGUAGE plpgsql AS $fence$
       BEGIN
         RAISE EXCEPTION 'tenant schema % is being moved: writes are refused', TG_TABLE_SCHEMA
           USING ERRCODE = '${TENANT_FENCED}';
       END
       $fence$`
}

/**
 * Fences every table of `schema`. Creating the triggers waits for writes in flight to end (their
 * locks conflict), so once this returns no write can commit in the schema. Runs in its own
 * transaction, every table locked first, each attempt bounded (ddl-locks.ts): it never deadlocks
 * with the tenant's writes, and gives up after `totalMs` behind a long one (the move then fails).
 *
 * @example
 * await pools.forMaster().withClient((client) => fence(client, pools.schemaOf('acme'), { totalMs: 30_000 }))
 */
export async function fence(
  client: ClientBase,
  schema: string,
  options: LockRetryOptions = {},
): Promise<void> {
  const s = quoteIdent(schema)
  await withLockRetries(
    client,
    async () => {
      const tables = await tablesInLoadOrder(client, schema, [CHANGES])
      await lockTables(client, schema, tables)
      await client.query(fenceFunction(schema))
      for (const table of tables) {
        const t = `${s}.${quoteIdent(table)}`
        await client.query(`DROP TRIGGER IF EXISTS ${FENCE} ON ${t}`)
        await client.query(
          `CREATE TRIGGER ${FENCE} BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON ${t}
           FOR EACH STATEMENT EXECUTE FUNCTION ${s}.${FENCE}()`,
        )
      }
    },
    options,
  )
}

/**
 * Takes the fence down (a move that failed part way): the schema takes writes again.
 *
 * @example
 * await pools.forMaster().withClient((client) => unfence(client, pools.schemaOf('acme')))
 */
export async function unfence(
  client: ClientBase,
  schema: string,
  options: LockRetryOptions = {},
): Promise<void> {
  const s = quoteIdent(schema)
  await withLockRetries(
    client,
    async () => {
      const tables = await tablesInLoadOrder(client, schema, [CHANGES])
      await lockTables(client, schema, tables)
      for (const table of tables) {
        await client.query(`DROP TRIGGER IF EXISTS ${FENCE} ON ${s}.${quoteIdent(table)}`)
      }
      await client.query(`DROP FUNCTION IF EXISTS ${s}.${FENCE}()`)
    },
    options,
  )
}

/**
 * Locks `tables` of `schema` as CREATE TRIGGER does (SHARE ROW EXCLUSIVE: writes wait, reads go
 * on), all in one statement, in the order given (load order: load-order.ts), within the
 * transaction's lock_timeout.
 */
export async function lockTables(client: ClientBase, schema: string, tables: string[]): Promise<void> {
  if (tables.length === 0) return
  const s = quoteIdent(schema)
  const list = tables.map((t) => `${s}.${quoteIdent(t)}`).join(', ')
  await client.query(`LOCK TABLE ${list} IN SHARE ROW EXCLUSIVE MODE`)
}

/**
 * The ordinary tables of `schema`, by name.
 *
 * @example
 * const tables = await pools.master.withClient((client) => tablesOf(client, pools.schemaOf('acme')))
 */
export async function tablesOf(client: ClientBase, schema: string): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname`,
    [schema],
  )
  return rows.map((r) => r.name)
}
