// tablesInLoadOrder (load-order.ts) on a real server: a schema's ordinary and partitioned tables,
// parents before the tables that reference them, the tables of one rank by name. A table's
// reference to itself or to another schema's table does not hold it back; the tables in `except`
// are left out, and what references them still comes. A schema without tables, or none at all,
// has none; a cycle of foreign keys is broken at its first table by name.
import type { Client } from 'pg'
import { rowTablesInLoadOrder, tablesInLoadOrder } from '../../lib'
import { uniqueTenant, withAdmin } from '../support/db'

// Rank 1: audit, customers, zones; rank 2: orders; rank 3: lines and shipments (which references
// two tables of different ranks). By name they would be audit, customers, lines, orders, …
async function world(c: Client): Promise<string> {
  const schema = `tenant_${uniqueTenant('lo')}`
  await c.query(`CREATE SCHEMA ${schema}`)
  await c.query(`SET search_path = ${schema}`)
  await c.query(`
    CREATE TABLE zones (id int PRIMARY KEY);
    CREATE TABLE shipments (id int PRIMARY KEY, order_id int, zone int REFERENCES zones);
    CREATE TABLE lines (order_id int, sku text);
    CREATE TABLE orders (id int PRIMARY KEY, customer int);
    CREATE TABLE customers (id int PRIMARY KEY);
    CREATE TABLE audit (at timestamptz);
    ALTER TABLE shipments ADD FOREIGN KEY (order_id) REFERENCES orders;
    ALTER TABLE lines ADD FOREIGN KEY (order_id) REFERENCES orders;
    ALTER TABLE orders ADD FOREIGN KEY (customer) REFERENCES customers;
    CREATE VIEW order_view AS SELECT * FROM orders;
    CREATE SEQUENCE counter;
    RESET search_path`)
  return schema
}

describe('Function: tablesInLoadOrder', () => {
  it('puts parents before the tables that reference them, the tables of one rank by name', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      expect(await tablesInLoadOrder(c, schema)).toEqual([
        'audit',
        'customers',
        'zones',
        'orders',
        'lines',
        'shipments',
      ])
    })
  })

  it('is not held back by a reference to the table itself or to another schema’s table; partitioned tables count', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      await c.query(
        `CREATE SCHEMA ${schema}_shared; CREATE TABLE ${schema}_shared.regions (id int PRIMARY KEY)`,
      )
      await c.query(`CREATE TABLE ${schema}.nodes (id int PRIMARY KEY, parent int REFERENCES ${schema}.nodes,
        region int REFERENCES ${schema}_shared.regions)`)
      await c.query(
        `CREATE TABLE ${schema}.events (id int, zone int REFERENCES ${schema}.zones) PARTITION BY LIST (id)`,
      )
      expect(await tablesInLoadOrder(c, schema)).toEqual([
        'audit',
        'customers',
        'nodes',
        'zones',
        'events',
        'orders',
        'lines',
        'shipments',
      ])
    })
  })

  it('tells a table from another schema’s of the same name: a reference there is no cycle here', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      // orders references shared.customers, and the schema's own customers references orders: by
      // name alone, customers and orders would wait for each other.
      await c.query(
        `CREATE SCHEMA ${schema}_shared; CREATE TABLE ${schema}_shared.customers (id int PRIMARY KEY)`,
      )
      await c.query(`ALTER TABLE ${schema}.orders ADD COLUMN payer int REFERENCES ${schema}_shared.customers`)
      await c.query(`ALTER TABLE ${schema}.orders DROP CONSTRAINT orders_customer_fkey`)
      await c.query(`ALTER TABLE ${schema}.customers ADD COLUMN first_order int REFERENCES ${schema}.orders`)
      expect(await tablesInLoadOrder(c, schema)).toEqual([
        'audit',
        'orders',
        'zones',
        'customers',
        'lines',
        'shipments',
      ])
    })
  })

  it('leaves out the tables in except, and what references them still comes', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      expect(await tablesInLoadOrder(c, schema, ['orders', 'audit'])).toEqual([
        'customers',
        'lines',
        'zones',
        'shipments',
      ])
      expect(await tablesInLoadOrder(c, schema, [])).toHaveLength(6)
    })
  })

  it('has no tables for a schema without any, nor for one that does not exist', async () => {
    await withAdmin(async (c) => {
      const schema = `tenant_${uniqueTenant('lo')}`
      await c.query(`CREATE SCHEMA ${schema}; CREATE VIEW ${schema}.v AS SELECT 1 AS x`)
      expect(await tablesInLoadOrder(c, schema)).toEqual([])
      expect(await tablesInLoadOrder(c, `${schema}_missing`)).toEqual([])
    })
  })

  it('breaks a cycle of foreign keys at its first table by name, and orders the rest parents first', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      // customers and orders now reference each other: neither can come first by its keys.
      await c.query(`ALTER TABLE ${schema}.customers ADD COLUMN first_order int REFERENCES ${schema}.orders`)
      expect(await tablesInLoadOrder(c, schema)).toEqual([
        'audit',
        'zones',
        'customers',
        'orders',
        'lines',
        'shipments',
      ])
      // A second cycle, apart from the first: each broken at its own first table by name.
      await c.query(`CREATE TABLE ${schema}.b_side (id int PRIMARY KEY, a int);
        CREATE TABLE ${schema}.a_side (id int PRIMARY KEY, b int REFERENCES ${schema}.b_side);
        ALTER TABLE ${schema}.b_side ADD FOREIGN KEY (a) REFERENCES ${schema}.a_side`)
      expect(await tablesInLoadOrder(c, schema)).toEqual([
        'audit',
        'zones',
        'a_side',
        'b_side',
        'customers',
        'orders',
        'lines',
        'shipments',
      ])
      // Leaving one of them out breaks the cycle as well.
      expect(await tablesInLoadOrder(c, schema, ['customers', 'a_side'])).toEqual([
        'audit',
        'b_side',
        'orders',
        'zones',
        'lines',
        'shipments',
      ])
    })
  })
})

describe('Function: rowTablesInLoadOrder', () => {
  it('gives the tables that hold rows: partitions in place of their partitioned table, after what their parent references', async () => {
    await withAdmin(async (c) => {
      // Prepare: events, partitioned, references zones; its partition a_events sorts before zones by
      // name. tickets references events, so each of its partitions.
      const schema = await world(c)
      await c.query(`SET search_path = ${schema}`)
      await c.query(`
        CREATE TABLE events (id int PRIMARY KEY, zone int REFERENCES zones) PARTITION BY RANGE (id);
        CREATE TABLE a_events PARTITION OF events FOR VALUES FROM (0) TO (100);
        CREATE TABLE b_events PARTITION OF events FOR VALUES FROM (100) TO (200)
          PARTITION BY RANGE (id);
        CREATE TABLE b_events_low PARTITION OF b_events FOR VALUES FROM (100) TO (150);
        CREATE TABLE b_events_high PARTITION OF b_events FOR VALUES FROM (150) TO (200);
        CREATE TABLE tickets (id int PRIMARY KEY, event int REFERENCES events);
        RESET search_path`)

      // Act
      const rows = await rowTablesInLoadOrder(c, schema, ['audit'])

      // Assess: no partitioned table, nested or not; each partition after zones, tickets after them
      expect(rows).toEqual([
        'customers',
        'zones',
        'a_events',
        'b_events_high',
        'b_events_low',
        'orders',
        'lines',
        'shipments',
        'tickets',
      ])
      expect(await tablesInLoadOrder(c, schema, ['audit'])).toEqual(
        expect.arrayContaining(['events', 'b_events']),
      )
    })
  })
})
