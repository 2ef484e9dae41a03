// The fence of a moving tenant (fence.ts), on a real server. fence puts a statement trigger on every
// table of a schema but the change log: INSERT, UPDATE, DELETE and TRUNCATE are refused with TPM01
// (also a statement that would change no row), reads go on. A second fence changes nothing; a fence
// that cannot get its locks within totalMs fails with 55P03 and leaves nothing behind; a fence
// started behind a write waits for it. unfence takes the triggers and their function down, also a
// second time or where there never was a fence, and fails with 55P03 behind a lock, the fence then
// standing. lockTables takes SHARE ROW EXCLUSIVE on the tables named and sends nothing for none;
// tablesOf lists a schema's ordinary and partitioned tables by name.
import type { Client } from 'pg'
import { fence, tablesOf, unfence } from '../../lib'
import { CHANGES, FENCE, lockTables } from '../../lib/placement/fence'
import { codeOf, databaseUrl, eventually, onServer, uniqueTenant, withAdmin } from '../support/db'

// customers, orders referencing them, lines referencing orders (no primary key), the change log,
// a view and a sequence; one row in each table.
async function world(c: Client): Promise<string> {
  const schema = `tenant_${uniqueTenant('fe')}`
  await c.query(`CREATE SCHEMA ${schema}`)
  await c.query(`SET search_path = ${schema}`)
  await c.query(`
    CREATE TABLE customers (id int PRIMARY KEY, name text);
    CREATE TABLE orders (id int PRIMARY KEY, customer int REFERENCES customers, note text);
    CREATE TABLE lines (order_id int REFERENCES orders, sku text);
    CREATE TABLE ${CHANGES} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tbl text);
    CREATE VIEW order_view AS SELECT * FROM orders;
    CREATE SEQUENCE counter;
    INSERT INTO customers VALUES (1, 'c');
    INSERT INTO orders VALUES (1, 1, 'n');
    INSERT INTO lines VALUES (1, 'sku');
    INSERT INTO ${CHANGES} (tbl) VALUES ('orders');
    RESET search_path`)
  return schema
}

const tables = ['customers', 'lines', 'orders']

/** The tables of `schema` with a trigger named `name`, by name. */
const triggered = async (c: Client, schema: string, name = FENCE): Promise<string[]> =>
  (
    await c.query<{ t: string }>(
      `SELECT c.relname AS t FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND g.tgname = $2 ORDER BY 1`,
      [schema, name],
    )
  ).rows.map((r) => r.t)

/** Whether `schema` holds the fence function. */
const hasFenceFunction = async (c: Client, schema: string): Promise<boolean> =>
  (
    await c.query(
      `SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname = $1 AND p.proname = $2`,
      [schema, FENCE],
    )
  ).rowCount === 1

/** What each kind of write on each table of `world` does: 'done' or its SQLSTATE. */
async function writes(c: Client, schema: string): Promise<Record<string, string | undefined>> {
  const outcomes: Record<string, string | undefined> = {}
  const tries: Array<[string, string]> = [
    ['insert customers', `INSERT INTO ${schema}.customers VALUES (2, 'd')`],
    ['update customers', `UPDATE ${schema}.customers SET name = 'e' WHERE id = 1`],
    ['update no row', `UPDATE ${schema}.customers SET name = 'e' WHERE id = -1`],
    ['insert orders', `INSERT INTO ${schema}.orders VALUES (2, 1, 'm')`],
    ['update orders', `UPDATE ${schema}.orders SET note = 'o'`],
    ['insert lines', `INSERT INTO ${schema}.lines VALUES (1, 'other')`],
    ['delete lines', `DELETE FROM ${schema}.lines`],
    ['truncate lines', `TRUNCATE ${schema}.lines`],
    ['delete orders', `DELETE FROM ${schema}.orders WHERE id = 2`],
  ]
  for (const [what, sql] of tries) outcomes[what] = await codeOf(c.query(sql))
  return outcomes
}

const all = (outcome: string) => ({
  'insert customers': outcome,
  'update customers': outcome,
  'update no row': outcome,
  'insert orders': outcome,
  'update orders': outcome,
  'insert lines': outcome,
  'delete lines': outcome,
  'truncate lines': outcome,
  'delete orders': outcome,
})

const count = async (c: Client, table: string): Promise<number> =>
  (await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]?.n ?? -1

describe('Function: fence', () => {
  it('refuses every kind of write on every table but the change log with TPM01, and lets reads through', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      await fence(c, schema)
      expect(await writes(c, schema)).toEqual(all('TPM01'))
      // Nothing changed, and every table reads as before.
      expect((await c.query(`SELECT id, name FROM ${schema}.customers`)).rows).toEqual([{ id: 1, name: 'c' }])
      expect((await c.query(`SELECT note FROM ${schema}.order_view`)).rows).toEqual([{ note: 'n' }])
      expect(await count(c, `${schema}.lines`)).toBe(1)
      // The mover's own log is not fenced.
      await c.query(`INSERT INTO ${schema}.${CHANGES} (tbl) VALUES ('lines')`)
      await c.query(`DELETE FROM ${schema}.${CHANGES}`)
      expect(await triggered(c, schema)).toEqual(tables)
      expect(await hasFenceFunction(c, schema)).toBe(true)
      // The client is not left in a transaction: what it does next commits on its own.
      await c.query(`CREATE TABLE ${schema}.later (x int)`)
      expect(await onServer(databaseUrl(), (o) => count(o, `${schema}.later`))).toBe(0)
    })
  })

  it('is idempotent: a second fence succeeds and the schema stays fenced, one trigger per table', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      await fence(c, schema)
      await fence(c, schema)
      expect(await triggered(c, schema)).toEqual(tables)
      const { rows } = await c.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1`,
        [schema],
      )
      // The foreign keys' own (internal) triggers, and one fence trigger per table.
      const { rows: internal } = await c.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND g.tgisinternal`,
        [schema],
      )
      expect(rows[0]?.n).toBe((internal[0]?.n ?? 0) + tables.length)
      expect(await writes(c, schema)).toEqual(all('TPM01'))
    })
  })

  it('fences a schema without tables: nothing to lock, the fence function is made', async () => {
    await withAdmin(async (c) => {
      const schema = `tenant_${uniqueTenant('fe')}`
      await c.query(`CREATE SCHEMA ${schema}`)
      await fence(c, schema)
      expect(await hasFenceFunction(c, schema)).toBe(true)
      expect(await triggered(c, schema)).toEqual([])
    })
  })

  it('fences partitioned tables and their partitions, in schemas and tables whose names need quoting', async () => {
    await withAdmin(async (c) => {
      const schema = `Fence ${uniqueTenant('Q')}`
      const s = c.escapeIdentifier(schema)
      await c.query(`CREATE SCHEMA ${s}`)
      await c.query(`CREATE TABLE ${s}."Event Log" (id int, at date) PARTITION BY RANGE (at)`)
      await c.query(
        `CREATE TABLE ${s}."Event Log 2024" PARTITION OF ${s}."Event Log" FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`,
      )
      await fence(c, schema)
      expect(await triggered(c, schema)).toEqual(['Event Log', 'Event Log 2024'])
      expect(await codeOf(c.query(`INSERT INTO ${s}."Event Log" VALUES (1, '2024-03-01')`))).toBe('TPM01')
      expect(await codeOf(c.query(`INSERT INTO ${s}."Event Log 2024" VALUES (1, '2024-03-01')`))).toBe(
        'TPM01',
      )
      expect(await codeOf(c.query(`TRUNCATE ${s}."Event Log"`))).toBe('TPM01')
      await unfence(c, schema)
      expect(await codeOf(c.query(`INSERT INTO ${s}."Event Log" VALUES (1, '2024-03-01')`))).toBe('done')
    })
  })

  it('fails with 55P03 behind a write in flight once totalMs is spent, leaving no trigger and no function', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      await onServer(databaseUrl(), async (writer) => {
        await writer.query('BEGIN')
        await writer.query(`INSERT INTO ${schema}.orders VALUES (7, 1, 'in flight')`)
        expect(await codeOf(fence(c, schema, { attemptMs: 20, totalMs: 0 }))).toBe('55P03')
        expect(await triggered(c, schema)).toEqual([])
        expect(await hasFenceFunction(c, schema)).toBe(false)
        await writer.query('COMMIT')
      })
      expect(await writes(c, schema)).toEqual(all('done'))
      await fence(c, schema)
      expect(await writes(c, schema)).toEqual(all('TPM01'))
    })
  })

  it('waits for a write in flight to end, then fences: the write is in, the next one refused', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid
      await onServer(databaseUrl(), async (writer) => {
        await writer.query('BEGIN')
        await writer.query(`INSERT INTO ${schema}.orders VALUES (7, 1, 'in flight')`)
        const fencing = fence(c, schema, { attemptMs: 500, totalMs: 60_000 })
        const waited = await eventually(async () => {
          const { rowCount } = await writer.query(
            `SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'`,
            [pid],
          )
          return rowCount === 1
        }, 20_000)
        expect(waited).toBe(true)
        await writer.query('COMMIT')
        await fencing
        expect(await codeOf(writer.query(`INSERT INTO ${schema}.orders VALUES (8, 1, 'after')`))).toBe(
          'TPM01',
        )
      })
      expect((await c.query(`SELECT id FROM ${schema}.orders ORDER BY id`)).rows).toEqual([
        { id: 1 },
        { id: 7 },
      ])
    })
  })
})

describe('Function: unfence', () => {
  it('takes the triggers and the function down: every write goes through again', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      await fence(c, schema)
      await unfence(c, schema)
      expect(await triggered(c, schema)).toEqual([])
      expect(await hasFenceFunction(c, schema)).toBe(false)
      expect(await writes(c, schema)).toEqual(all('done'))
    })
  })

  it('is idempotent, and does no harm to a schema never fenced, nor to one without tables', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      await unfence(c, schema)
      await fence(c, schema)
      await unfence(c, schema)
      await unfence(c, schema)
      expect(await triggered(c, schema)).toEqual([])
      expect(await writes(c, schema)).toEqual(all('done'))
      const empty = `tenant_${uniqueTenant('fe')}`
      await c.query(`CREATE SCHEMA ${empty}`)
      await fence(c, empty)
      await unfence(c, empty)
      expect(await hasFenceFunction(c, empty)).toBe(false)
    })
  })

  it('fails with 55P03 behind a lock once totalMs is spent, and the fence stands', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      await fence(c, schema)
      await onServer(databaseUrl(), async (holder) => {
        await holder.query('BEGIN')
        await holder.query(`LOCK TABLE ${schema}.orders IN ROW EXCLUSIVE MODE`)
        expect(await codeOf(unfence(c, schema, { attemptMs: 20, totalMs: 0 }))).toBe('55P03')
        await holder.query('ROLLBACK')
      })
      expect(await triggered(c, schema)).toEqual(tables)
      expect(await hasFenceFunction(c, schema)).toBe(true)
      expect(await writes(c, schema)).toEqual(all('TPM01'))
    })
  })
})

describe('Function: lockTables', () => {
  it('takes SHARE ROW EXCLUSIVE on every table named, in the caller’s transaction', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      await c.query(`CREATE TABLE ${schema}."Odd Name" (x int)`)
      const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid
      await c.query('BEGIN')
      await lockTables(c, schema, ['customers', 'Odd Name', 'orders'])
      const held = await onServer(
        databaseUrl(),
        async (o) =>
          (
            await o.query<{ t: string; mode: string }>(
              `SELECT c.relname AS t, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
             WHERE l.pid = $1 AND l.granted AND c.relnamespace = $2::regnamespace ORDER BY 1`,
              [pid, schema],
            )
          ).rows,
      )
      await c.query('ROLLBACK')
      expect(held).toEqual([
        { t: 'Odd Name', mode: 'ShareRowExclusiveLock' },
        { t: 'customers', mode: 'ShareRowExclusiveLock' },
        { t: 'orders', mode: 'ShareRowExclusiveLock' },
      ])
    })
  })

  it('sends nothing for no tables (a statement would fail in an aborted transaction)', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      await c.query('BEGIN')
      expect(await codeOf(c.query('SELECT 1 / 0'))).toBe('22012')
      await lockTables(c, schema, [])
      expect(await codeOf(lockTables(c, schema, ['orders']))).toBe('25P02')
      await c.query('ROLLBACK')
    })
  })
})

describe('Function: tablesOf', () => {
  it('lists the ordinary and partitioned tables of the schema by name, and nothing else', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      await c.query(`CREATE TABLE ${schema}.archive (id int, at date) PARTITION BY RANGE (at)`)
      await c.query(
        `CREATE TABLE ${schema}.archive_2024 PARTITION OF ${schema}.archive FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`,
      )
      await c.query(`CREATE SCHEMA ${schema}_other; CREATE TABLE ${schema}_other.elsewhere (x int)`)
      expect(await tablesOf(c, schema)).toEqual([
        'archive',
        'archive_2024',
        'customers',
        'lines',
        'orders',
        CHANGES,
      ])
      expect(await tablesOf(c, `${schema}_missing`)).toEqual([])
    })
  })
})
