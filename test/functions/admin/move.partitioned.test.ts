// Moving a tenant whose migrations make a partitioned table (events by year, with a default
// partition) and a table that references it. Its rows live in the partitions: they are copied,
// captured and compared partition by partition, and the foreign keys come back once, from their
// parents. Writes during the copy go through the partitioned table and straight to a partition, and
// one moves a row to another partition. To a PostgreSQL 18 cluster and to a 15 one, which refuses
// a NOT VALID foreign key on a partitioned table.
import type { Client } from 'pg'
import { moveTenant } from '../../../functions/admin/move'
import { migrateMaster, provisionTenant } from '../../../functions/admin/provision'
import { type Log, TenantCatalog, TenantPools } from '../../../lib'
import { clusterBUrl, databaseUrl, onServer, uniqueTenant } from '../../support/db'
import { memoryLog } from '../../support/memory-log'
import { pg15Label } from '../../support/skips'

jest.mock('../../../migrations', () => {
  const actual = jest.requireActual('../../../migrations')
  return {
    ...actual,
    tenantMigrations: [
      ...actual.tenantMigrations,
      {
        version: '0900_events_partitioned',
        sql: `
          CREATE TABLE events (id bigserial, at date NOT NULL, order_id uuid REFERENCES orders (id), note text,
            PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
          CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
          CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
          CREATE TABLE events_other PARTITION OF events DEFAULT;
          CREATE TABLE event_notes (id int PRIMARY KEY, event_id bigint NOT NULL, event_at date NOT NULL,
            FOREIGN KEY (event_id, event_at) REFERENCES events (id, at));`,
      },
    ],
  }
})

const { log } = memoryLog()

// Everything a reader sees of the tenant: each row with the partition that holds it.
const contents = (url: string, schema: string) =>
  onServer(url, async (c) => {
    const read = async (sql: string) => (await c.query(sql)).rows
    return {
      events: await read(
        `SELECT (SELECT relname::text FROM pg_class WHERE oid = e.tableoid) AS part, id::text, at::text, order_id, note
         FROM ${schema}.events AS e ORDER BY id`,
      ),
      notes: await read(`SELECT * FROM ${schema}.event_notes ORDER BY id`),
      orders: await read(`SELECT id, reference FROM ${schema}.orders ORDER BY id`),
    }
  })

// The foreign keys of the schema, each with whether it is checked; a partition's own copies too.
const foreignKeys = (url: string, schema: string) =>
  onServer(url, async (c) => {
    const { rows } = await c.query<{ table: string; valid: boolean; inherited: boolean }>(
      `SELECT r.relname AS table, k.convalidated AS valid, k.conparentid <> 0 AS inherited
       FROM pg_constraint k JOIN pg_class r ON r.oid = k.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
       WHERE n.nspname = $1 AND k.contype = 'f' ORDER BY 1, 2, 3`,
      [schema],
    )
    return rows
  })

const writesDuringTheCopy = async (c: Client, schema: string) => {
  await c.query(`SET search_path = ${schema}`)
  const { rows } = await c.query<{ id: string }>(
    `INSERT INTO orders (reference, customer, total_cents) VALUES ('during', 'c', 1) RETURNING id`,
  )
  const order = rows[0]?.id
  // Through the partitioned table, into two partitions; straight into one; a row moved across.
  await c.query(
    `INSERT INTO events (at, order_id, note) VALUES ('2025-06-01', $1, 'new 2025'), ('1990-01-01', $1, 'old')`,
    [order],
  )
  await c.query(`INSERT INTO events_2026 (at, note) VALUES ('2026-06-01', 'straight in')`)
  await c.query(`UPDATE events SET at = '2026-02-02', note = 'moved across' WHERE note = 'seed 1'`)
  await c.query(`DELETE FROM events WHERE note = 'seed 2'`)
  await c.query(
    `INSERT INTO event_notes SELECT 100 + row_number() OVER (ORDER BY id), id, at FROM events WHERE note IN ('new 2025', 'moved across')`,
  )
  await c.query('RESET search_path')
}

describe.each([
  ['PostgreSQL 18 (cluster b)', 'b', () => clusterBUrl()],
  [pg15Label(), 'old', () => process.env.TEST_PG15_URL],
])('Moving a tenant with a partitioned table to %s', (_label, target, targetUrl) => {
  const url = targetUrl()
  const pools = url
    ? new TenantPools({
        logger: log,
        connectionString: databaseUrl(),
        clusters: { [target]: { connectionString: url } },
      })
    : undefined
  const catalog = new TenantCatalog(() => pools as TenantPools, { ttlMs: 0 })
  afterAll(() => pools?.end())

  const itIf = url ? it : it.skip
  itIf(
    'copies every partition, keeps the writes made during the copy, and checks the foreign keys',
    async () => {
      // Prepare: a tenant on main with rows in every partition and notes on two of them
      const p = pools as TenantPools
      const targetAt = url as string
      await migrateMaster(p)
      const id = uniqueTenant('pm')
      const schema = p.schemaOf(id)
      await provisionTenant(p, id, 'main')
      await onServer(databaseUrl(), (c) =>
        c.query(
          `INSERT INTO ${schema}.events (at, note) SELECT d, 'seed ' || g FROM generate_series(1, 300) AS g,
           LATERAL (SELECT date '2024-12-01' + (g * 2) AS d) AS x;
         INSERT INTO ${schema}.event_notes SELECT id, id, at FROM ${schema}.events WHERE id % 10 = 0`,
        ),
      )
      let fenced: Awaited<ReturnType<typeof contents>> | undefined
      let keysAtSource: Awaited<ReturnType<typeof foreignKeys>> | undefined

      // Act: writes once the first table is copied; the source's last state read behind the fence
      const report = await moveTenant(p, catalog, id, target, log as Log, {
        onStep: async (step) => {
          if (step === 'copy') await onServer(databaseUrl(), (c) => writesDuringTheCopy(c, schema))
          if (step === 'fence') {
            fenced = await contents(databaseUrl(), schema)
            keysAtSource = await foreignKeys(databaseUrl(), schema)
          }
        },
      })

      // Assess: the target holds what the source last held, each row in the same partition
      expect(report).toMatchObject({ from: 'main', to: target, outcome: 'moved' })
      expect(report.tables.map((t) => t.name).sort()).toEqual(
        ['event_notes', 'events_2025', 'events_2026', 'events_other', 'order_lines', 'orders'].sort(),
      )
      const moved = await contents(targetAt, schema)
      expect(moved).toEqual(fenced)
      expect(moved.events.filter((e) => e.note === 'moved across')).toEqual([
        expect.objectContaining({ part: 'events_2026', at: '2026-02-02' }),
      ])
      expect(moved.events.some((e) => e.note === 'seed 2')).toBe(false)
      expect(moved.events.map((e) => e.part)).toEqual(
        expect.arrayContaining(['events_2025', 'events_2026', 'events_other']),
      )
      // Every foreign key back, once, and checked; a partition's copies with their parent's
      // order_lines→orders; events→orders and its 3 partitions' copies; event_notes→events and 3 more, one per partition
      expect(keysAtSource).toHaveLength(1 + 4 + 4)
      expect(await foreignKeys(targetAt, schema)).toEqual(keysAtSource)
      expect(keysAtSource?.every((k) => k.valid)).toBe(true)
      // The tenant is served from the target: its sequence goes on after the copied ids
      const [max, next] = await onServer(targetAt, async (c) => [
        (await c.query(`SELECT max(id)::int AS n FROM ${schema}.events`)).rows[0]?.n,
        (await c.query(`INSERT INTO ${schema}.events (at) VALUES ('2026-01-01') RETURNING id::int AS n`))
          .rows[0]?.n,
      ])
      expect(next).toBeGreaterThan(max)
      expect(await catalog.placement(id)).toMatchObject({ status: 'active', cluster: target })
    },
  )
})
