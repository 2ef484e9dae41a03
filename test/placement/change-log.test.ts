// The change log of a moving tenant (change-log.ts), on a real server. primaryKeyOf gives a table's
// key columns in key order with their types, nothing without a key. capturedTables maps every table
// but the log and schema_migrations, in load order, to its key, and is undefined when one table has
// no key. startCapture logs the key of each row written (an insert's new key, a delete's old one, an
// update's old one and its new one when the key changed), refuses TRUNCATE with TPM01, captures
// only the tables it is given, takes the log back from every role and from PUBLIC, and can be run
// again without logging twice or losing what was logged. stopCapture drops the triggers, their
// function and the log, also a second time or where nothing was captured, and leaves a fence up.
import type { Client } from 'pg'
import { CHANGES, capturedTables, fence, migrate, primaryKeyOf, startCapture, stopCapture } from '../../lib'
import { FENCE } from '../../lib/placement/fence'
import { tenantMigrations } from '../../migrations'
import { codeOf, uniqueTenant, withAdmin } from '../support/db'

const CAPTURE = 'tenant_pools_capture'
const NO_TRUNCATE = 'tenant_pools_no_truncate'

// items (an int key) and pairs (a two-column key, declared in the other order than the columns).
async function world(c: Client): Promise<string> {
  const schema = `tenant_${uniqueTenant('cl')}`
  await c.query(`CREATE SCHEMA ${schema}`)
  await c.query(`
    CREATE TABLE ${schema}.items (id int PRIMARY KEY, note text);
    CREATE TABLE ${schema}.pairs (a int, b text, v int, PRIMARY KEY (b, a))`)
  return schema
}

async function capture(c: Client, schema: string): Promise<void> {
  const keys = await capturedTables(c, schema)
  if (!keys) throw new Error('every table of the world has a primary key')
  await startCapture(c, schema, keys)
}

const logged = async (c: Client, schema: string) =>
  (await c.query(`SELECT tbl, key FROM ${c.escapeIdentifier(schema)}.${CHANGES} ORDER BY id`)).rows

/** The tables of `schema` with a trigger named `name`, by name. */
const triggered = async (c: Client, schema: string, name: string): Promise<string[]> =>
  (
    await c.query<{ t: string }>(
      `SELECT c.relname AS t FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND g.tgname = $2 ORDER BY 1`,
      [schema, name],
    )
  ).rows.map((r) => r.t)

const hasFunction = async (c: Client, schema: string, name: string): Promise<boolean> =>
  (
    await c.query(
      `SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname = $1 AND p.proname = $2`,
      [schema, name],
    )
  ).rowCount === 1

/** Roles (other than the owner) granted anything on the log, PUBLIC as '-'. */
const grantees = async (c: Client, schema: string): Promise<string[]> =>
  (
    await c.query<{ role: string }>(
      `SELECT DISTINCT CASE WHEN a.grantee = 0 THEN '-' ELSE a.grantee::regrole::text END AS role
       FROM pg_class c, aclexplode(c.relacl) AS a
       WHERE c.oid = $1::regclass AND a.grantee <> c.relowner`,
      [`${schema}.${CHANGES}`],
    )
  ).rows.map((r) => r.role)

describe('Function: primaryKeyOf', () => {
  it('gives the key columns in key order with their types, and nothing for a table without a key', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      await c.query(`CREATE TABLE ${schema}.typed (code varchar(10), n numeric(6, 2), PRIMARY KEY (n, code))`)
      await c.query(`CREATE TABLE ${schema}.keyless (x int UNIQUE)`)
      // A table of the same name elsewhere, keyed otherwise.
      await c.query(`CREATE SCHEMA ${schema}_b; CREATE TABLE ${schema}_b.pairs (v int PRIMARY KEY)`)
      expect(await primaryKeyOf(c, schema, 'pairs')).toEqual([
        { name: 'b', type: 'text' },
        { name: 'a', type: 'integer' },
      ])
      expect(await primaryKeyOf(c, schema, 'typed')).toEqual([
        { name: 'n', type: 'numeric(6,2)' },
        { name: 'code', type: 'character varying(10)' },
      ])
      expect(await primaryKeyOf(c, schema, 'keyless')).toEqual([])
      expect(await primaryKeyOf(c, schema, 'missing')).toEqual([])
    })
  })
})

describe('Function: capturedTables', () => {
  it('maps every table but the log and schema_migrations, in load order, to its key columns', async () => {
    await withAdmin(async (c) => {
      const schema = `tenant_${uniqueTenant('cl')}`
      await migrate(c, schema, tenantMigrations)
      await c.query(`CREATE TABLE ${schema}.${CHANGES} (id int PRIMARY KEY)`)
      const keys = await capturedTables(c, schema)
      // order_lines sorts first by name, but references orders.
      expect(keys && [...keys]).toEqual([
        ['orders', ['id']],
        ['order_lines', ['order_id', 'line_no']],
      ])
    })
  })

  it('is undefined when one table has no primary key, and empty for a schema without tables', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      await c.query(`CREATE TABLE ${schema}.keyless (x int)`)
      expect(await capturedTables(c, schema)).toBeUndefined()
      // The log and schema_migrations are left out before their keys are looked at.
      await c.query(`DROP TABLE ${schema}.keyless`)
      await c.query(
        `CREATE TABLE ${schema}.${CHANGES} (x int); CREATE TABLE ${schema}.schema_migrations (v text)`,
      )
      expect([...((await capturedTables(c, schema)) ?? [])]).toEqual([
        ['items', ['id']],
        ['pairs', ['b', 'a']],
      ])
      const empty = `tenant_${uniqueTenant('cl')}`
      await c.query(`CREATE SCHEMA ${empty}`)
      expect(await capturedTables(c, empty)).toEqual(new Map())
    })
  })
})

describe('Function: startCapture', () => {
  it('logs the key of each row written: an insert’s new key, a delete’s old key, an update’s old key and its new key when the key changed', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      await capture(c, schema)
      expect(await logged(c, schema)).toEqual([])
      await c.query(`INSERT INTO ${schema}.items VALUES (1, 'a'), (2, 'b')`)
      await c.query(`UPDATE ${schema}.items SET note = 'c' WHERE id = 1`)
      await c.query(`UPDATE ${schema}.items SET id = 3 WHERE id = 2`)
      await c.query(`DELETE FROM ${schema}.items WHERE id = 1`)
      await c.query(`INSERT INTO ${schema}.pairs VALUES (1, 'x', 0)`)
      await c.query(`UPDATE ${schema}.pairs SET a = 2`)
      // A statement that changes no row logs nothing.
      await c.query(`DELETE FROM ${schema}.items WHERE id = -1`)
      expect(await logged(c, schema)).toEqual([
        { tbl: 'items', key: { id: 1 } },
        { tbl: 'items', key: { id: 2 } },
        { tbl: 'items', key: { id: 1 } },
        { tbl: 'items', key: { id: 2 } },
        { tbl: 'items', key: { id: 3 } },
        { tbl: 'items', key: { id: 1 } },
        { tbl: 'pairs', key: { a: 1, b: 'x' } },
        { tbl: 'pairs', key: { a: 1, b: 'x' } },
        { tbl: 'pairs', key: { a: 2, b: 'x' } },
      ])
      // A rolled-back write leaves nothing in the log.
      await c.query('BEGIN')
      await c.query(`INSERT INTO ${schema}.items VALUES (9, 'gone')`)
      await c.query('ROLLBACK')
      expect(await logged(c, schema)).toHaveLength(9)
    })
  })

  it('refuses TRUNCATE of a captured table with TPM01, while other writes go on', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      await c.query(`INSERT INTO ${schema}.items VALUES (1, 'a')`)
      await capture(c, schema)
      expect(await codeOf(c.query(`TRUNCATE ${schema}.items`))).toBe('TPM01')
      expect(await codeOf(c.query(`TRUNCATE ${schema}.pairs`))).toBe('TPM01')
      expect(await codeOf(c.query(`DELETE FROM ${schema}.items`))).toBe('done')
      expect(await triggered(c, schema, NO_TRUNCATE)).toEqual(['items', 'pairs'])
      expect(await triggered(c, schema, CAPTURE)).toEqual(['items', 'pairs'])
    })
  })

  it('is idempotent: a second start keeps what was logged, and each write is logged once', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      await capture(c, schema)
      await c.query(`INSERT INTO ${schema}.items VALUES (1, 'a')`)
      await capture(c, schema)
      await c.query(`INSERT INTO ${schema}.items VALUES (2, 'b')`)
      expect(await logged(c, schema)).toEqual([
        { tbl: 'items', key: { id: 1 } },
        { tbl: 'items', key: { id: 2 } },
      ])
      expect(await triggered(c, schema, CAPTURE)).toEqual(['items', 'pairs'])
      expect(await triggered(c, schema, NO_TRUNCATE)).toEqual(['items', 'pairs'])
    })
  })

  it('captures only the tables it is given, key columns whose names need quoting too', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      await c.query(`CREATE TABLE ${schema}."Odd Table" ("it's" int PRIMARY KEY, "Key Two" text)`)
      await startCapture(c, schema, new Map([['Odd Table', ["it's"]]]))
      await c.query(`INSERT INTO ${schema}."Odd Table" VALUES (5, 'x')`)
      await c.query(`INSERT INTO ${schema}.items VALUES (1, 'a')`)
      expect(await codeOf(c.query(`TRUNCATE ${schema}.pairs`))).toBe('done')
      expect(await codeOf(c.query(`TRUNCATE ${schema}."Odd Table"`))).toBe('TPM01')
      expect(await logged(c, schema)).toEqual([{ tbl: 'Odd Table', key: { "it's": 5 } }])
    })
  })

  it('takes the log back from every role but its owner, and from PUBLIC, even where default privileges granted it', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      const role = `Reader ${uniqueTenant('r')}`
      const r = c.escapeIdentifier(role)
      await c.query(`CREATE ROLE ${r} NOLOGIN`)
      await c.query(
        `ALTER DEFAULT PRIVILEGES IN SCHEMA ${schema} GRANT SELECT, INSERT ON TABLES TO ${r}, PUBLIC`,
      )
      await capture(c, schema)
      expect(await grantees(c, schema)).toEqual([])
      // Granted again by hand: a second start takes it back again.
      await c.query(`GRANT SELECT, DELETE ON ${schema}.${CHANGES} TO ${r}, PUBLIC`)
      expect(new Set(await grantees(c, schema))).toEqual(new Set(['-', r]))
      await capture(c, schema)
      expect(await grantees(c, schema)).toEqual([])
    })
  })
})

// A partitioned table (events, by year, a partition per year and a default one) and a table that
// references it: the rows live in the partitions.
async function partitioned(c: Client): Promise<string> {
  const schema = await world(c)
  await c.query(`
    CREATE TABLE ${schema}.events (id int, at date, note text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
    CREATE TABLE ${schema}.events_2025 PARTITION OF ${schema}.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    CREATE TABLE ${schema}.events_2026 PARTITION OF ${schema}.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
    CREATE TABLE ${schema}.events_other PARTITION OF ${schema}.events DEFAULT;
    CREATE TABLE ${schema}.alerts (id int PRIMARY KEY, event_id int, event_at date,
      FOREIGN KEY (event_id, event_at) REFERENCES ${schema}.events)`)
  return schema
}

describe('Function: capture of a partitioned table', () => {
  it('maps the partitions, not the partitioned table, to their keys, a table referencing them after them', async () => {
    await withAdmin(async (c) => {
      const schema = await partitioned(c)
      expect([...((await capturedTables(c, schema)) ?? [])]).toEqual([
        ['events_2025', ['id', 'at']],
        ['events_2026', ['id', 'at']],
        ['events_other', ['id', 'at']],
        ['items', ['id']],
        ['pairs', ['b', 'a']],
        ['alerts', ['id']],
      ])
    })
  })

  it('logs each write under the partition that holds the row, through the partitioned table or straight to a partition', async () => {
    await withAdmin(async (c) => {
      // Prepare
      const schema = await partitioned(c)
      await c.query(`INSERT INTO ${schema}.events VALUES (1, '2025-03-01', 'a'), (2, '2026-03-01', 'b')`)
      await capture(c, schema)
      await capture(c, schema)

      // Act: through the parent; straight to a partition; an update that moves a row to another
      // partition; a delete; one into the default partition
      await c.query(`INSERT INTO ${schema}.events VALUES (3, '2025-04-01', 'c')`)
      await c.query(`INSERT INTO ${schema}.events_2026 VALUES (4, '2026-04-01', 'd')`)
      await c.query(`UPDATE ${schema}.events SET at = '2026-05-01' WHERE id = 1`)
      await c.query(`DELETE FROM ${schema}.events_2026 WHERE id = 2`)
      await c.query(`INSERT INTO ${schema}.events VALUES (5, '1999-01-01', 'e')`)

      // Assess: each once, though capture started twice
      expect(await logged(c, schema)).toEqual([
        { tbl: 'events_2025', key: { id: 3, at: '2025-04-01' } },
        { tbl: 'events_2026', key: { id: 4, at: '2026-04-01' } },
        { tbl: 'events_2025', key: { id: 1, at: '2025-03-01' } },
        { tbl: 'events_2026', key: { id: 1, at: '2026-05-01' } },
        { tbl: 'events_2026', key: { id: 2, at: '2026-03-01' } },
        { tbl: 'events_other', key: { id: 5, at: '1999-01-01' } },
      ])
      expect(await triggered(c, schema, CAPTURE)).toEqual([
        'alerts',
        'events_2025',
        'events_2026',
        'events_other',
        'items',
        'pairs',
      ])
    })
  })

  it('refuses TRUNCATE of the partitioned table and of each partition with TPM01; stopCapture takes it all down', async () => {
    await withAdmin(async (c) => {
      // Prepare
      const schema = await partitioned(c)
      await c.query(`INSERT INTO ${schema}.events VALUES (1, '2025-03-01', 'a')`)
      await capture(c, schema)

      // Act / Assess: captured
      expect(await codeOf(c.query(`TRUNCATE ${schema}.events, ${schema}.alerts`))).toBe('TPM01')
      expect(await codeOf(c.query(`TRUNCATE ${schema}.events_2025, ${schema}.alerts`))).toBe('TPM01')

      // Act / Assess: stopped
      await stopCapture(c, schema)
      expect(await triggered(c, schema, CAPTURE)).toEqual([])
      expect(await triggered(c, schema, NO_TRUNCATE)).toEqual([])
      expect(await codeOf(c.query(`TRUNCATE ${schema}.events, ${schema}.alerts`))).toBe('done')
    })
  })
})

describe('Function: stopCapture', () => {
  it('drops the triggers, their function and the log: writes are no longer logged, TRUNCATE goes through', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      await capture(c, schema)
      await c.query(`INSERT INTO ${schema}.items VALUES (1, 'a')`)
      await stopCapture(c, schema)
      expect(await triggered(c, schema, CAPTURE)).toEqual([])
      expect(await triggered(c, schema, NO_TRUNCATE)).toEqual([])
      expect(await hasFunction(c, schema, CAPTURE)).toBe(false)
      const { rows } = await c.query('SELECT to_regclass($1) AS r', [`${schema}.${CHANGES}`])
      expect(rows).toEqual([{ r: null }])
      expect(await codeOf(c.query(`INSERT INTO ${schema}.items VALUES (2, 'b')`))).toBe('done')
      expect(await codeOf(c.query(`TRUNCATE ${schema}.items, ${schema}.pairs`))).toBe('done')
    })
  })

  it('is idempotent, does no harm where nothing was captured, and leaves a fence up', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      await stopCapture(c, schema)
      await capture(c, schema)
      await fence(c, schema)
      await stopCapture(c, schema)
      await stopCapture(c, schema)
      expect(await triggered(c, schema, FENCE)).toEqual(['items', 'pairs'])
      expect(await codeOf(c.query(`INSERT INTO ${schema}.items VALUES (1, 'a')`))).toBe('TPM01')
      expect(await codeOf(c.query(`TRUNCATE ${schema}.items`))).toBe('TPM01')
      expect(await triggered(c, schema, CAPTURE)).toEqual([])
    })
  })
})
