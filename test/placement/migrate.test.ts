// migrate (migrate.ts) on a real server: it makes the schema and its schema_migrations, applies the
// migrations not applied yet in the order given and returns their versions. The migrations run with
// the schema as search_path, no statement_timeout and a 30 s lock_timeout, in that transaction only.
// A second call applies nothing; a later list applies only what is new. A failing migration rolls
// the whole call back and is rethrown with its SQLSTATE, the client usable. A caller holding the
// schema's advisory lock keeps migrate waiting, and callers racing on one schema apply each
// migration once. A list naming one version twice is refused whole (23505).
import type { Client } from 'pg'
import { type Migration, migrate } from '../../lib'
import { codeOf, databaseUrl, eventually, onServer, uniqueTenant, withAdmin } from '../support/db'

const newSchema = () => `tenant_${uniqueTenant('mi')}`

/** The versions recorded in `schema`'s schema_migrations, by version. */
const recorded = async (c: Client, schema: string): Promise<string[]> =>
  (
    await c.query<{ version: string }>(
      `SELECT version FROM ${c.escapeIdentifier(schema)}.schema_migrations WHERE applied_at IS NOT NULL
       ORDER BY version`,
    )
  ).rows.map((r) => r.version)

/** Whether `table` exists in `schema`. */
const exists = async (c: Client, schema: string, table: string): Promise<boolean> =>
  (
    await c.query<{ r: string | null }>('SELECT to_regclass($1) AS r', [
      `${c.escapeIdentifier(schema)}.${c.escapeIdentifier(table)}`,
    ])
  ).rows[0]?.r != null

const schemaExists = async (c: Client, schema: string): Promise<boolean> =>
  (await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount === 1

const setting = async (c: Client, name: string): Promise<string | undefined> =>
  (await c.query<{ v: string }>('SELECT current_setting($1) AS v', [name])).rows[0]?.v

// Not in lexical order: the second depends on the first.
const parentsThenChildren: Migration[] = [
  { version: '0002_parents', sql: 'CREATE TABLE parents (id int PRIMARY KEY)' },
  { version: '0001_children', sql: 'CREATE TABLE children (parent int REFERENCES parents)' },
]

describe('Function: migrate', () => {
  it('makes the schema and schema_migrations, applies every migration in the order given, and returns their versions', async () => {
    await withAdmin(async (c) => {
      const schema = newSchema()
      expect(await migrate(c, schema, parentsThenChildren)).toEqual(['0002_parents', '0001_children'])
      expect(await recorded(c, schema)).toEqual(['0001_children', '0002_parents'])
      expect(await exists(c, schema, 'parents')).toBe(true)
      expect(await exists(c, schema, 'children')).toBe(true)
      // Committed: another session sees it all.
      expect(await onServer(databaseUrl(), (o) => recorded(o, schema))).toEqual([
        '0001_children',
        '0002_parents',
      ])
    })
  })

  it('makes the schema and an empty schema_migrations for no migrations', async () => {
    await withAdmin(async (c) => {
      const schema = newSchema()
      expect(await migrate(c, schema, [])).toEqual([])
      expect(await schemaExists(c, schema)).toBe(true)
      expect(await recorded(c, schema)).toEqual([])
    })
  })

  it('runs the migrations with the schema as search_path, no statement_timeout and a 30 s lock_timeout, for that transaction only', async () => {
    await withAdmin(async (c) => {
      const schema = `Mig ${uniqueTenant('Q')}`
      await c.query(`SET statement_timeout = '5s'`)
      await c.query(`SET lock_timeout = '7s'`)
      await c.query('SET search_path = public')
      await migrate(c, schema, [
        {
          version: '0001_settings',
          sql: `CREATE TABLE settings AS SELECT current_setting('statement_timeout') AS st,
                  current_setting('lock_timeout') AS lt`,
        },
      ])
      expect(await exists(c, schema, 'settings')).toBe(true)
      expect(await exists(c, 'public', 'settings')).toBe(false)
      const { rows } = await c.query(`SELECT st, lt FROM ${c.escapeIdentifier(schema)}.settings`)
      expect(rows).toEqual([{ st: '0', lt: '30s' }])
      expect({
        statement_timeout: await setting(c, 'statement_timeout'),
        lock_timeout: await setting(c, 'lock_timeout'),
        search_path: await setting(c, 'search_path'),
      }).toEqual({ statement_timeout: '5s', lock_timeout: '7s', search_path: 'public' })
    })
  })

  it('applies nothing a second time, and of a longer list only what is new', async () => {
    await withAdmin(async (c) => {
      const schema = newSchema()
      // Neither migration could run twice.
      const first: Migration = { version: '0001_a', sql: 'CREATE TABLE a (x int)' }
      const second: Migration = { version: '0002_b', sql: 'CREATE TABLE b (x int)' }
      expect(await migrate(c, schema, [first])).toEqual(['0001_a'])
      expect(await migrate(c, schema, [first])).toEqual([])
      expect(await migrate(c, schema, [first, second])).toEqual(['0002_b'])
      expect(await migrate(c, schema, [first, second])).toEqual([])
      expect(await recorded(c, schema)).toEqual(['0001_a', '0002_b'])
    })
  })

  it('rolls the whole call back on a failing migration, rethrows its SQLSTATE, and a retry applies them all', async () => {
    await withAdmin(async (c) => {
      const schema = newSchema()
      const good: Migration = { version: '0001_good', sql: 'CREATE TABLE good (x int)' }
      const bad: Migration = { version: '0002_bad', sql: 'INSERT INTO nowhere VALUES (1)' }
      await c.query('SET search_path = public')
      expect(await codeOf(migrate(c, schema, [good, bad]))).toBe('42P01')
      // Nothing is left, not even the schema, and the client takes statements again.
      expect(await schemaExists(c, schema)).toBe(false)
      expect(await setting(c, 'search_path')).toBe('public')
      // Where some were applied before, they stay, and the failing call records nothing.
      expect(await migrate(c, schema, [good])).toEqual(['0001_good'])
      expect(await codeOf(migrate(c, schema, [good, bad]))).toBe('42P01')
      expect(await recorded(c, schema)).toEqual(['0001_good'])
      const fixed: Migration = { version: '0002_bad', sql: 'INSERT INTO good VALUES (1)' }
      expect(await migrate(c, schema, [good, fixed])).toEqual(['0002_bad'])
      expect(await recorded(c, schema)).toEqual(['0001_good', '0002_bad'])
    })
  })

  it('refuses a list naming one version twice, applying nothing (23505)', async () => {
    await withAdmin(async (c) => {
      const schema = newSchema()
      await migrate(c, schema, [])
      const twice: Migration[] = [
        { version: '0001_x', sql: 'CREATE TABLE x1 (x int)' },
        { version: '0001_x', sql: 'CREATE TABLE x2 (x int)' },
      ]
      expect(await codeOf(migrate(c, schema, twice))).toBe('23505')
      expect(await recorded(c, schema)).toEqual([])
      expect(await exists(c, schema, 'x1')).toBe(false)
    })
  })

  it('waits while another session holds the schema’s advisory lock, and not for another schema’s', async () => {
    await withAdmin(async (c) => {
      const schema = newSchema()
      const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid
      await onServer(databaseUrl(), async (holder) => {
        const lock = (name: string) => holder.query('SELECT pg_advisory_lock(hashtext($1))', [name])
        await lock(`tenant-pools:migrate:${schema}_other`)
        await lock(`tenant-pools:migrate:${schema}`)
        const migrating = migrate(c, schema, parentsThenChildren)
        const waiting = await eventually(async () => {
          const { rowCount } = await holder.query(
            `SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock' AND wait_event = 'advisory'`,
            [pid],
          )
          return rowCount === 1
        }, 20_000)
        expect(waiting).toBe(true)
        expect(await schemaExists(holder, schema)).toBe(false)
        await holder.query('SELECT pg_advisory_unlock(hashtext($1))', [`tenant-pools:migrate:${schema}`])
        expect(await migrating).toEqual(['0002_parents', '0001_children'])
        // The other schema's lock is still held, and keeps nothing from this one.
        expect(
          await migrate(c, schema, [{ version: '0003_more', sql: 'CREATE TABLE more (x int)' }]),
        ).toEqual(['0003_more'])
        await holder.query('SELECT pg_advisory_unlock_all()')
      })
    })
  })

  it('applies each migration once when callers race on one schema: one returns the versions, the others nothing', async () => {
    const schema = newSchema()
    const migrations: Migration[] = [
      { version: '0001_t', sql: 'CREATE TABLE t (x int)' },
      { version: '0002_row', sql: 'INSERT INTO t VALUES (1)' },
    ]
    const results = await Promise.all(
      Array.from({ length: 4 }, () => onServer(databaseUrl(), (c) => migrate(c, schema, migrations))),
    )
    expect(results.filter((r) => r.length > 0)).toEqual([['0001_t', '0002_row']])
    expect(results.filter((r) => r.length === 0)).toHaveLength(3)
    await withAdmin(async (c) => {
      expect((await c.query(`SELECT x FROM ${schema}.t`)).rows).toEqual([{ x: 1 }])
    })
  })
})
