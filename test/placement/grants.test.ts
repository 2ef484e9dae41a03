// Tenant traffic's login owns nothing: provisioning (as the schema owner) grants it a tenant's rows
// and nothing more. Tried as a SQL injection in a tenant route would: every write path through a
// fenced schema is refused, every change of structure too, and the rows are as they were.
import { randomBytes } from 'node:crypto'
import { pipeline } from 'node:stream/promises'
import { type Client, escapeIdentifier } from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import {
  CHANGES,
  capturedTables,
  fence,
  grantCatalogRead,
  grantTenantTraffic,
  migrate,
  startCapture,
  stopCapture,
  TenantPools,
  unfence,
} from '../../lib'
import { tenantMigrations } from '../../migrations'
import { codeOf, onServer, uniqueTenant } from '../support/db'
import { memoryLog } from '../support/memory-log'
import { pg15Label } from '../support/skips'

const as = (url: string, user: string, password: string): string => {
  const u = new URL(url)
  u.username = user
  u.password = password
  return u.toString()
}

// The schema owner and tenant traffic's role, on the server at `url`.
async function logins(url: string) {
  const suffix = randomBytes(4).toString('hex')
  const owner = { user: `own_${suffix}`, password: `pw-${suffix}-O` }
  const traffic = { user: `trf_${suffix}`, password: `pw-${suffix}-T` }
  await onServer(url, async (su) => {
    const database = new URL(url).pathname.slice(1)
    await su.query(`CREATE ROLE ${owner.user} LOGIN PASSWORD '${owner.password}'`)
    await su.query(`GRANT CREATE ON DATABASE ${escapeIdentifier(database)} TO ${owner.user}`)
    await su.query(`CREATE ROLE ${traffic.user} LOGIN PASSWORD '${traffic.password}'`)
  })
  return { owner, traffic }
}

const orderRow = (reference: string) =>
  `INSERT INTO orders (reference, customer, total_cents) VALUES ('${reference}', 'c', 1)`

describe.each([
  ['PostgreSQL 18', process.env.DATABASE_URL],
  [pg15Label(), process.env.TEST_PG15_URL],
])('Behaviour: tenant traffic’s login on %s', (_, url) => {
  const run = url ? it : it.skip
  const opened: TenantPools[] = []
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((p) => p.end()))
  })

  // A tenant provisioned by the owner, and a registry that logs in as tenant traffic.
  const world = async () => {
    const server = url as string
    const { owner, traffic } = await logins(server)
    const id = uniqueTenant('tr')
    const schema = `tenant_${id}`
    const ownerUrl = as(server, owner.user, owner.password)
    await onServer(ownerUrl, async (c) => {
      await migrate(c, schema, tenantMigrations)
      await grantTenantTraffic(c, schema, traffic.user)
      await c.query(`${orderRow('before').replace('orders', `${schema}.orders`)}`)
    })
    const pools = new TenantPools({
      connectionString: as(server, traffic.user, traffic.password),
      logger: memoryLog().log,
    })
    opened.push(pools)
    const asOwner = <T>(fn: (c: Client) => Promise<T>) => onServer(ownerUrl, fn)
    const count = () =>
      onServer(server, async (su) => {
        const { rows } = await su.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.orders`)
        return rows[0]?.n
      })
    const sqlCode = (sql: string) => codeOf(pools.query(id, sql))
    return { id, schema, pools, asOwner, count, sqlCode, traffic }
  }

  run('reads and writes its tenant’s rows while the schema is not fenced', async () => {
    const { id, pools, count, sqlCode } = await world()
    await pools.query(id, orderRow('a'))
    await pools.query(id, `UPDATE orders SET customer = 'd' WHERE reference = 'a'`)
    await pools.query(
      id,
      `INSERT INTO order_lines SELECT id, 1, 'SKU', 1, 5 FROM orders WHERE reference = 'a'
       ON CONFLICT (order_id, line_no) DO UPDATE SET quantity = 2`,
    )
    expect(await count()).toBe(2)
    expect(await sqlCode(`DELETE FROM order_lines`)).toBe('done')
    // …but owns nothing there: no structure, no TRUNCATE, no trigger.
    expect(await sqlCode('CREATE TABLE stray (x int)')).toBe('42501')
    expect(await sqlCode('TRUNCATE order_lines')).toBe('42501')
    expect(await sqlCode('DROP TABLE order_lines')).toBe('42501')
    expect(await sqlCode('ALTER TABLE orders ADD COLUMN x int')).toBe('42501')
    expect(await sqlCode(`INSERT INTO schema_migrations (version) VALUES ('9999_fake')`)).toBe('42501')
  })

  run(
    'uses its tenant’s sequences, those of tables a later migration adds too, and reads the catalog',
    async () => {
      const { id, schema, pools, asOwner, sqlCode, traffic } = await world()
      // A sequence the owner made while no default privilege covered it, then the grant, and a table
      // with a serial column made after it (as a later migration would): tenant traffic draws from both.
      await asOwner(async (c) => {
        await c.query(
          `ALTER DEFAULT PRIVILEGES IN SCHEMA ${schema} REVOKE USAGE, SELECT ON SEQUENCES FROM ${traffic.user}`,
        )
        await c.query(`CREATE SEQUENCE ${schema}.tickets`)
        await grantTenantTraffic(c, schema, traffic.user)
        await c.query(`CREATE TABLE ${schema}.notes (id serial PRIMARY KEY, body text)`)
      })
      expect(await sqlCode(`SELECT nextval('tickets')`)).toBe('done')
      expect(await sqlCode(`INSERT INTO notes (body) VALUES ('n')`)).toBe('done')
      expect((await pools.query<{ n: number }>(id, 'SELECT count(*)::int AS n FROM notes')).rows[0]?.n).toBe(
        1,
      )
      // The catalog: readable once granted, in a schema the owner made, and nothing else there.
      const master = `catalog_${id}`
      await asOwner(async (c) => {
        await c.query(`CREATE SCHEMA ${master}`)
        await c.query(`CREATE TABLE ${master}.tenants (id text PRIMARY KEY)`)
        await c.query(`CREATE TABLE ${master}.secrets (id text PRIMARY KEY)`)
      })
      const read = (table: string) => codeOf(pools.master.query(`SELECT count(*) FROM ${master}.${table}`))
      expect(await read('tenants')).toBe('42501')
      await asOwner((c) => grantCatalogRead(c, master, traffic.user))
      expect(await read('tenants')).toBe('done')
      expect(await read('secrets')).toBe('42501')
    },
  )

  run('cannot get past the fence by any write path, nor take it down', async () => {
    const { id, schema, pools, asOwner, count, sqlCode } = await world()
    await asOwner((c) => fence(c, schema))
    const fenced = 'TPM01'
    const refusedWrites: Array<[string, string]> = [
      ['INSERT', orderRow('x')],
      [
        'upsert',
        `${orderRow('before')} ON CONFLICT (reference) WHERE deleted_at IS NULL DO UPDATE SET customer = 'y'`,
      ],
      ['UPDATE', `UPDATE orders SET customer = 'y'`],
      ['DELETE', 'DELETE FROM orders'],
      [
        'MERGE',
        `MERGE INTO orders o USING (SELECT 'm' AS reference) s ON o.reference = s.reference
         WHEN NOT MATCHED THEN INSERT (reference, customer, total_cents) VALUES (s.reference, 'c', 1)`,
      ],
      ['a writable CTE', `WITH w AS (${orderRow('w')} RETURNING id) SELECT count(*) FROM w`],
    ]
    for (const [what, sql] of refusedWrites) {
      expect({ what, code: await sqlCode(sql) }).toEqual({ what, code: fenced })
    }
    // COPY FROM fires the INSERT trigger too.
    const copied = await codeOf(
      pools.withClient(id, (c) =>
        pipeline(
          async function* () {
            yield 'copy-1\tc\t1\n'
          },
          c.query(copyFrom('COPY orders (reference, customer, total_cents) FROM STDIN')),
        ),
      ),
    )
    expect(copied).toBe(fenced)
    // The fence itself, and the ways around a trigger: each needs a right the role does not have.
    const refusedChanges: Array<[string, string]> = [
      ['DISABLE TRIGGER USER', 'ALTER TABLE orders DISABLE TRIGGER USER'],
      ['DISABLE TRIGGER ALL', 'ALTER TABLE orders DISABLE TRIGGER ALL'],
      ['DROP TRIGGER', 'DROP TRIGGER tenant_pools_fence ON orders'],
      ['DROP FUNCTION', 'DROP FUNCTION tenant_pools_fence()'],
      [
        'CREATE OR REPLACE FUNCTION',
        'CREATE OR REPLACE FUNCTION tenant_pools_fence() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$',
      ],
      ['CREATE TABLE', 'CREATE TABLE stray (x int)'],
      ['TRUNCATE', 'TRUNCATE order_lines'],
      ['session_replication_role', `SELECT set_config('session_replication_role', 'replica', false)`],
      ['ALTER TABLE RENAME', 'ALTER TABLE orders RENAME TO old_orders'],
    ]
    for (const [what, sql] of refusedChanges) {
      expect({ what, code: await sqlCode(sql) }).toEqual({ what, code: '42501' })
    }
    // The rows are as they were, and the fence still stands.
    expect(await count()).toBe(1)
    expect(await sqlCode(orderRow('after'))).toBe(fenced)
    await asOwner((c) => unfence(c, schema))
    expect(await sqlCode(orderRow('after'))).toBe('done')
  })

  run('writes through a move’s change capture, and can neither read nor change the change log', async () => {
    const { id, schema, pools, asOwner, sqlCode } = await world()
    await asOwner(async (c) => {
      const keys = await capturedTables(c, schema)
      if (!keys) throw new Error('every table of the orders schema has a primary key')
      await startCapture(c, schema, keys)
    })
    await pools.query(id, orderRow('captured'))
    await pools.query(id, `UPDATE orders SET customer = 'd' WHERE reference = 'captured'`)
    const logged = await asOwner((c) => c.query(`SELECT tbl FROM ${schema}.${CHANGES} ORDER BY id`))
    expect(logged.rows).toEqual([{ tbl: 'orders' }, { tbl: 'orders' }])
    for (const sql of [
      `SELECT * FROM ${CHANGES}`,
      `DELETE FROM ${CHANGES}`,
      `INSERT INTO ${CHANGES} (tbl, key) VALUES ('orders', '{}')`,
      `SELECT set_config('session_replication_role', 'replica', false)`,
      'ALTER TABLE orders DISABLE TRIGGER tenant_pools_capture',
    ]) {
      expect({ sql, code: await sqlCode(sql) }).toEqual({ sql, code: '42501' })
    }
    await asOwner((c) => stopCapture(c, schema))
    expect(await sqlCode(orderRow('after'))).toBe('done')
  })

  run('grants from many callers at once, on one schema and on the catalog, all succeed', async () => {
    // Two admin environments provisioning at once grant on the same objects: PostgreSQL refuses
    // concurrent changes of one object's privileges ("tuple concurrently updated") unless serialized.
    const { schema, asOwner, traffic } = await world()
    const catalog = `${schema}_catalog`
    await asOwner((c) => c.query(`CREATE SCHEMA ${catalog}; CREATE TABLE ${catalog}.tenants (id text)`))
    const outcomes = await Promise.allSettled(
      Array.from({ length: 8 }, () =>
        asOwner(async (c) => {
          for (let i = 0; i < 10; i++) {
            await grantTenantTraffic(c, schema, traffic.user)
            await grantCatalogRead(c, catalog, traffic.user)
          }
        }),
      ),
    )
    expect(
      outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason)),
    ).toEqual([])
  })

  run('gets the rows of a table a later migration adds, as the owner runs it', async () => {
    const { id, schema, pools, asOwner, sqlCode } = await world()
    await asOwner((c) =>
      migrate(c, schema, [
        ...tenantMigrations,
        { version: '9000_notes', sql: 'CREATE TABLE notes (body text)' },
      ]),
    )
    await pools.query(id, `INSERT INTO notes VALUES ('hello')`)
    expect((await pools.query(id, 'SELECT body FROM notes')).rows).toEqual([{ body: 'hello' }])
    expect(await sqlCode('ALTER TABLE notes DISABLE TRIGGER USER')).toBe('42501')
  })
})
