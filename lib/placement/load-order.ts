// Tables in foreign-key order, parents first: the order rows are loaded in, and the order the move
// locks tables in. A writer adds an order, then its lines: locking `orders` before `order_lines`
// waits for such a writer to finish instead of holding what it needs next.
import type { ClientBase } from 'pg'

/**
 * The ordinary and partitioned tables of `schema` but `except`, parents before the tables that
 * reference them. A reference to another schema's table (a shared one, loaded by no move) does not
 * count, whatever its name. Tables whose foreign keys form a cycle come in name order where the
 * cycle allows no other.
 *
 * @example
 * const tables = await tablesInLoadOrder(client, 'tenant_acme', [CHANGES]) // e.g. ['customers', 'orders', 'order_lines']
 */
export function tablesInLoadOrder(
  client: ClientBase,
  schema: string,
  except: string[] = [],
): Promise<string[]> {
  return inLoadOrder(client, schema, except, ['r', 'p'])
}

/**
 * The tables of `schema` that hold rows, but `except`, in load order: the ordinary tables and the
 * partitions, not a partitioned table (its rows are its partitions'). What a copy reads and writes,
 * and what a row trigger captures: one on a partitioned table would be cloned onto each partition.
 *
 * @example
 * const tables = await rowTablesInLoadOrder(client, 'tenant_acme', [CHANGES]) // e.g. ['events_2026', 'orders']
 */
export function rowTablesInLoadOrder(
  client: ClientBase,
  schema: string,
  except: string[] = [],
): Promise<string[]> {
  return inLoadOrder(client, schema, except, ['r'])
}

async function inLoadOrder(
  client: ClientBase,
  schema: string,
  except: string[],
  kinds: string[],
): Promise<string[]> {
  // A partition's foreign keys include those cloned from its parent's (and a reference to a
  // partitioned table, one per partition): a partition comes after what its parent references.
  const { rows } = await client.query<{ name: string; refs: string[] }>(
    `SELECT c.relname AS name,
            coalesce(array_agg(r.relname::text) FILTER (WHERE r.relname IS NOT NULL AND r.oid <> c.oid AND r.relnamespace = c.relnamespace), '{}'::text[]) AS refs
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'f'
     LEFT JOIN pg_class r ON r.oid = k.confrelid
     WHERE n.nspname = $1 AND c.relkind = ANY ($3::"char"[]) AND NOT c.relname = ANY ($2::text[])
     GROUP BY c.relname ORDER BY c.relname`,
    [schema, except, kinds],
  )
  const order: string[] = []
  const pending = new Map(rows.map((r) => [r.name, r.refs]))
  while (pending.size > 0) {
    const left = [...pending]
    const ready = left.filter(([, refs]) => refs.every((r) => !pending.has(r)))
    // Foreign keys in a cycle (legal, with a nullable or deferrable side): none of them can come
    // first. The first by name does, and the rest follow parents first again. The copy loads with
    // the target's foreign keys dropped, so only the lock order depends on it, the same everywhere.
    if (ready.length === 0) ready.push(left[0] as [string, string[]])
    for (const [name] of ready) {
      order.push(name)
      pending.delete(name)
    }
  }
  return order
}
