// The change log of a moving tenant: while its rows are copied to another cluster, writes go on, and
// a row trigger on every table records the primary key of each row written (its old and new key on
// an update) in a table of the schema. The mover then copies those rows again from a later snapshot
// (catch-up), until little is left; only the last pass runs behind the fence. The log is written in
// the writer's transaction, so a committed change is always in it.
import type { ClientBase } from 'pg'
import { quoteIdent } from '../tenancy/tenant-id'
import { withLockRetries } from './ddl-locks'
import { CHANGES, FENCE, fenceFunction, lockTables } from './fence'
import { rowTablesInLoadOrder, tablesInLoadOrder } from './load-order'

export { CHANGES }

const CAPTURE = 'tenant_pools_capture'
// TRUNCATE changes rows without row triggers: refused while the changes are captured.
const NO_TRUNCATE = 'tenant_pools_no_truncate'

/**
 * A table's primary key columns and their types, in key order; empty without one.
 *
 * @example
 * const key = await primaryKeyOf(client, 'tenant_acme', 'orders') // e.g. [['id', 'uuid']]
 */
export async function primaryKeyOf(
  client: ClientBase,
  schema: string,
  table: string,
): Promise<Array<{ name: string; type: string }>> {
  const { rows } = await client.query<{ name: string; type: string }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
     FROM pg_index i
     JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k (attnum, position) ON true
     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
     WHERE n.nspname = $1 AND c.relname = $2 AND i.indisprimary
     ORDER BY k.position`,
    [schema, table],
  )
  return rows
}

/**
 * The tables whose changes are captured, in load order, with their primary key columns: every table
 * of `schema` that holds rows (a partition, not its partitioned table) but the log and the
 * migrations table (the copy makes that one by migrating).
 * Undefined if one of them has no primary key (its rows cannot be told apart: such a schema is moved
 * behind the fence for the whole copy).
 *
 * @example
 * const keys = await capturedTables(client, schema)
 * if (keys) await startCapture(client, schema, keys) // else: copy behind the fence
 */
export async function capturedTables(
  client: ClientBase,
  schema: string,
): Promise<Map<string, string[]> | undefined> {
  const keys = new Map<string, string[]>()
  for (const table of await rowTablesInLoadOrder(client, schema, [CHANGES, 'schema_migrations'])) {
    const key = await primaryKeyOf(client, schema, table)
    if (key.length === 0) return undefined
    keys.set(
      table,
      key.map((k) => k.name),
    )
  }
  return keys
}

/**
 * Starts capturing the changes of `keys`' tables (capturedTables). Idempotent: a move resumed after
 * a kill starts it again. The log is the owner's alone: tenant traffic's login writes it only
 * through the trigger (its function runs as the owner), and cannot read, change or empty it.
 *
 * @example
 * const keys = await capturedTables(client, schema)
 * if (keys) await startCapture(client, schema, keys)
 */
export async function startCapture(
  client: ClientBase,
  schema: string,
  keys: Map<string, string[]>,
): Promise<void> {
  const s = quoteIdent(schema)
  const log = `${s}.${quoteIdent(CHANGES)}`
  const tables = [...keys.keys()]
  await withLockRetries(client, async () => {
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${log} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         tbl text NOT NULL, key jsonb NOT NULL)`,
    )
    // Default privileges may have granted it to tenant traffic: taken back, from everyone.
    const { rows: grantees } = await client.query<{ role: string }>(
      `SELECT DISTINCT a.grantee::regrole::text AS role FROM pg_class c, aclexplode(c.relacl) AS a
       WHERE c.oid = $1::regclass AND a.grantee <> c.relowner AND a.grantee <> 0`,
      [log],
    )
    for (const { role } of grantees) await client.query(`REVOKE ALL ON ${log} FROM ${role}`)
    await client.query(`REVOKE ALL ON ${log} FROM PUBLIC`)
    await client.query(
      `CREATE OR REPLACE FUNCTION ${s}.${CAPTURE}() RETURNS trigger LANGUAGE plpgsql
       SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $capture$
       DECLARE
         old_key jsonb := '{}';
         new_key jsonb := '{}';
       BEGIN
         FOR i IN 0 .. TG_NARGS - 1 LOOP
           IF TG_OP <> 'INSERT' THEN old_key := old_key || jsonb_build_object(TG_ARGV[i], to_jsonb(OLD) -> TG_ARGV[i]); END IF;
           IF TG_OP <> 'DELETE' THEN new_key := new_key || jsonb_build_object(TG_ARGV[i], to_jsonb(NEW) -> TG_ARGV[i]); END IF;
         END LOOP;
         IF TG_OP <> 'INSERT' THEN INSERT INTO ${log} (tbl, key) VALUES (TG_TABLE_NAME, old_key); END IF;
         IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND new_key <> old_key) THEN
           INSERT INTO ${log} (tbl, key) VALUES (TG_TABLE_NAME, new_key);
         END IF;
         RETURN NULL;
       END
       $capture$`,
    )
    await client.query(fenceFunction(schema))
    await lockTables(client, schema, tables)
    for (const table of tables) {
      const t = `${s}.${quoteIdent(table)}`
      const args = (keys.get(table) ?? []).map((k) => `'${k.replaceAll("'", "''")}'`).join(', ')
      await client.query(`DROP TRIGGER IF EXISTS ${CAPTURE} ON ${t}`)
      await client.query(
        `CREATE TRIGGER ${CAPTURE} AFTER INSERT OR UPDATE OR DELETE ON ${t}
         FOR EACH ROW EXECUTE FUNCTION ${s}.${CAPTURE}(${args})`,
      )
      await client.query(`DROP TRIGGER IF EXISTS ${NO_TRUNCATE} ON ${t}`)
      await client.query(
        `CREATE TRIGGER ${NO_TRUNCATE} BEFORE TRUNCATE ON ${t}
         FOR EACH STATEMENT EXECUTE FUNCTION ${s}.${FENCE}()`,
      )
    }
  })
}

/**
 * Stops capturing (a move rolled back): the triggers, their function and the log go.
 *
 * @example
 * await pools.master.withClient((client) => stopCapture(client, pools.schemaOf('acme')))
 */
export async function stopCapture(client: ClientBase, schema: string): Promise<void> {
  const s = quoteIdent(schema)
  await withLockRetries(client, async () => {
    const tables = await tablesInLoadOrder(client, schema, [CHANGES])
    await lockTables(client, schema, tables)
    for (const table of tables) {
      const t = `${s}.${quoteIdent(table)}`
      await client.query(`DROP TRIGGER IF EXISTS ${CAPTURE} ON ${t}`)
      await client.query(`DROP TRIGGER IF EXISTS ${NO_TRUNCATE} ON ${t}`)
    }
    await client.query(`DROP FUNCTION IF EXISTS ${s}.${CAPTURE}()`)
    await client.query(`DROP TABLE IF EXISTS ${s}.${quoteIdent(CHANGES)}`)
  })
}
