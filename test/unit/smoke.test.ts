import { Client } from 'pg'

it('reaches the test database', async () => {
  const client = new Client({ connectionString: process.env.DATABASE_URL })
  await client.connect()
  const { rows } = await client.query('SELECT 1 AS one')
  await client.end()
  expect(rows).toEqual([{ one: 1 }])
})
