// Moving a tenant to another cluster (rebalancing): fence the old copy, copy the schema at its
// migration version and then the rows (COPY, streamed), verify counts and checksums, flip the
// placement, and remove the old copy. Reads go on throughout; writes are refused with TPM01 by the
// fence (503 with Retry-After) from the moment it stands until the flip. A move that fails before
// the flip takes the fence down and leaves the tenant where it was. One that dies mid-way (a Lambda
// timeout) leaves the fence up: posting the same move again starts it over.
import { pipeline } from 'node:stream/promises'
import { type ClientBase, escapeIdentifier } from 'pg'
import { from as copyFrom, to as copyTo } from 'pg-copy-streams'
import { fence, HttpError, type Log, migrate, type TenantCatalog, type TenantPools, unfence } from '../../lib'
import { tenantMigrations } from '../../migrations'

export interface MoveReport {
  id: string
  from: string
  to: string
  tables: Array<{ name: string; rows: number }>
  /** False: the old copy is still there (fenced, so it takes no writes); drop it by hand. */
  oldCopyRemoved: boolean
  durationMs: number
}

/** Moves `tenantId` to cluster `target`. Throws HttpError for a caller's mistake or a failed move. */
export async function moveTenant(
  pools: TenantPools,
  catalog: TenantCatalog,
  tenantId: string,
  target: string,
  log: Log,
): Promise<MoveReport> {
  const started = Date.now()
  const schema = pools.schemaOf(tenantId)
  if (!pools.clusterNames.includes(target)) {
    throw new HttpError(400, 'UNKNOWN_CLUSTER', `Unknown cluster; known: ${pools.clusterNames.join(', ')}`)
  }
  const source = await claimMove(pools, tenantId, schema, target)
  catalog.invalidate(tenantId)
  const on = (cluster: string) => ({ cluster })
  let tables: MoveReport['tables']
  try {
    await pools.withClient(tenantId, (c) => fence(c, schema), on(source))
    tables = await pools.withClient(
      tenantId,
      (src) => pools.withClient(tenantId, (dst) => copySchema(src, dst, schema), on(target)),
      on(source),
    )
    const { rowCount } = await pools.master.query(
      `UPDATE tenants SET cluster = $2, moving_to = NULL, updated_at = now() WHERE id = $1 AND moving_to = $2`,
      [tenantId, target],
    )
    if (rowCount !== 1) throw new Error('the move was claimed by another call meanwhile')
  } catch (err) {
    log.error('tenant move failed: the tenant stays where it was', {
      tenantId,
      from: source,
      to: target,
      err,
    })
    await undo(pools, tenantId, schema, source, target, log)
    catalog.invalidate(tenantId)
    throw new HttpError(503, 'MOVE_FAILED', `The move failed; the tenant stays on cluster ${source}`, {
      cause: err,
    })
  }
  // Not evicted: calls of this environment still on their way to the old copy would fail with
  // PoolsEndedError. They meet the fence or the missing schema instead, and are sent on (placed-db.ts);
  // the old scopes' connections are rebound or expire with them.
  catalog.invalidate(tenantId)
  // The old copy is fenced; removing it makes a stale environment's reads fail over to the new one.
  let oldCopyRemoved = true
  try {
    await pools.withClient(
      tenantId,
      async (c) => {
        await c.query(`SELECT set_config('lock_timeout', '10s', false)`)
        await c.query(`DROP SCHEMA IF EXISTS ${escapeIdentifier(schema)} CASCADE`)
      },
      on(source),
    )
  } catch (err) {
    oldCopyRemoved = false
    log.warn('tenant moved, but its old copy could not be removed (it stays fenced)', {
      tenantId,
      cluster: source,
      err,
    })
  }
  return { id: tenantId, from: source, to: target, tables, oldCopyRemoved, durationMs: Date.now() - started }
}

// Marks the move in the catalog, or says why it cannot start. Returns the source cluster.
async function claimMove(
  pools: TenantPools,
  tenantId: string,
  schema: string,
  target: string,
): Promise<string> {
  const { rows } = await pools.master.query<{ cluster: string; moving_to: string | null; status: string }>(
    'SELECT cluster, moving_to, status FROM tenants WHERE id = $1',
    [tenantId],
  )
  const row = rows[0]
  if (!row || row.status === 'deleted') throw new HttpError(404, 'TENANT_NOT_FOUND', 'Unknown tenant')
  if (row.cluster === target)
    throw new HttpError(409, 'ALREADY_THERE', `The tenant already lives on cluster ${target}`)
  if (row.moving_to !== null && row.moving_to !== target) {
    throw new HttpError(409, 'MOVE_IN_PROGRESS', `The tenant is being moved to cluster ${row.moving_to}`)
  }
  const { rowCount: ownRole } = await pools.master.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [
    schema,
  ])
  if (ownRole) {
    throw new HttpError(
      409,
      'ROLE_NOT_MOVABLE',
      'A tenant with a role of its own cannot be moved (roles live on one cluster)',
    )
  }
  const { rowCount } = await pools.master.query(
    `UPDATE tenants SET moving_to = $2, updated_at = now()
     WHERE id = $1 AND cluster = $3 AND (moving_to IS NULL OR moving_to = $2)`,
    [tenantId, target, row.cluster],
  )
  if (rowCount !== 1) throw new HttpError(409, 'MOVE_IN_PROGRESS', 'The tenant changed meanwhile; try again')
  return row.cluster
}

// Undoes a move that did not flip: the target's copy goes, the fence comes down, the claim is cleared.
async function undo(
  pools: TenantPools,
  tenantId: string,
  schema: string,
  source: string,
  target: string,
  log: Log,
): Promise<void> {
  const steps: Array<[string, () => Promise<unknown>]> = [
    [
      'drop the copy',
      () =>
        pools.withClient(
          tenantId,
          (c) => c.query(`DROP SCHEMA IF EXISTS ${escapeIdentifier(schema)} CASCADE`),
          {
            cluster: target,
          },
        ),
    ],
    ['take the fence down', () => pools.withClient(tenantId, (c) => unfence(c, schema), { cluster: source })],
    [
      'clear the claim',
      () =>
        pools.master.query('UPDATE tenants SET moving_to = NULL WHERE id = $1 AND moving_to = $2', [
          tenantId,
          target,
        ]),
    ],
  ]
  for (const [what, step] of steps) {
    await step().catch((err: unknown) => log.error(`tenant move: could not ${what}`, { tenantId, err }))
  }
}

/**
 * Copies `schema` from `src` to `dst` in one transaction on each side: the migrations the source
 * has, then every table's rows and every sequence's position, then a count and checksum per table
 * compared on both sides. Nothing is committed on `dst` unless all of it matches.
 */
async function copySchema(src: ClientBase, dst: ClientBase, schema: string): Promise<MoveReport['tables']> {
  const s = escapeIdentifier(schema)
  const { rows: versions } = await src.query<{ version: string }>(
    `SELECT version FROM ${s}.schema_migrations`,
  )
  const known = new Set(tenantMigrations.map((m) => m.version))
  const unknown = versions.filter((v) => !known.has(v.version))
  if (unknown.length > 0)
    throw new Error(`source schema has migrations this code does not know: ${unknown.map((v) => v.version)}`)
  // A leftover of an earlier attempt: the tenant is not placed there, so nothing else uses it.
  await dst.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`)
  const has = new Set(versions.map((v) => v.version))
  await migrate(
    dst,
    schema,
    tenantMigrations.filter((m) => has.has(m.version)),
  )
  // The same text for the same row on both servers, whatever their settings; and no API statement
  // timeout on a copy that may take longer.
  const settings = [
    `SET LOCAL TimeZone = 'UTC'`,
    `SET LOCAL DateStyle = 'ISO, MDY'`,
    'SET LOCAL extra_float_digits = 3',
    'SET LOCAL statement_timeout = 0',
  ]
  await src.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
  await dst.query('BEGIN')
  try {
    for (const q of settings) {
      await src.query(q)
      await dst.query(q)
    }
    const tables = await tablesInLoadOrder(src, schema)
    const report: MoveReport['tables'] = []
    for (const table of tables) {
      const t = `${s}.${escapeIdentifier(table)}`
      const columns = await copiedColumns(src, schema, table)
      await pipeline(
        src.query(copyTo(`COPY ${t} (${columns}) TO STDOUT`)),
        dst.query(copyFrom(`COPY ${t} (${columns}) FROM STDIN`)),
      )
      const [a, b] = await Promise.all([checksum(src, t), checksum(dst, t)])
      if (a.n !== b.n || a.sum !== b.sum) {
        throw new Error(`table ${table}: ${b.n} rows copied of ${a.n}, or their checksums differ`)
      }
      report.push({ name: table, rows: Number(a.n) })
    }
    const { rows: sequences } = await src.query<{ name: string }>(
      `SELECT sequencename AS name FROM pg_sequences WHERE schemaname = $1`,
      [schema],
    )
    for (const { name } of sequences) {
      const q = `${s}.${escapeIdentifier(name)}`
      const { rows } = await src.query<{ last_value: string; is_called: boolean }>(
        `SELECT last_value, is_called FROM ${q}`,
      )
      const at = rows[0]
      if (at) await dst.query('SELECT setval($1::regclass, $2, $3)', [q, at.last_value, at.is_called])
    }
    await dst.query('COMMIT')
    await src.query('COMMIT')
    return report
  } catch (err) {
    await dst.query('ROLLBACK').catch(() => {})
    await src.query('ROLLBACK').catch(() => {})
    throw err
  }
}

// Tables referenced by a foreign key come before those that reference them. The migrations table
// is left out: migrate() filled it on the target.
async function tablesInLoadOrder(client: ClientBase, schema: string): Promise<string[]> {
  const { rows } = await client.query<{ name: string; refs: string[] }>(
    `SELECT c.relname AS name,
            coalesce(array_agg(r.relname::text) FILTER (WHERE r.relname IS NOT NULL AND r.oid <> c.oid), '{}'::text[]) AS refs
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'f'
     LEFT JOIN pg_class r ON r.oid = k.confrelid
     WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname <> 'schema_migrations'
     GROUP BY c.relname ORDER BY c.relname`,
    [schema],
  )
  const order: string[] = []
  const pending = new Map(rows.map((r) => [r.name, r.refs]))
  while (pending.size > 0) {
    const ready = [...pending].filter(([, refs]) => refs.every((r) => !pending.has(r)))
    if (ready.length === 0) throw new Error(`foreign keys form a cycle among ${[...pending.keys()]}`)
    for (const [name] of ready) {
      order.push(name)
      pending.delete(name)
    }
  }
  return order
}

// Stored columns, in order (generated ones are computed again on the target).
async function copiedColumns(client: ClientBase, schema: string, table: string): Promise<string> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT a.attname AS name FROM pg_attribute a
     JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
     ORDER BY a.attnum`,
    [schema, table],
  )
  return rows.map((r) => escapeIdentifier(r.name)).join(', ')
}

async function checksum(client: ClientBase, table: string): Promise<{ n: string; sum: string }> {
  const { rows } = await client.query<{ n: string; sum: string }>(
    `SELECT count(*)::text AS n, coalesce(md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))), '') AS sum
     FROM ${table} AS t`,
  )
  return rows[0] as { n: string; sum: string }
}
