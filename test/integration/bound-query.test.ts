// boundQuery on a real connection (bound-query.ts): a rebind and a statement in one round trip, and
// a statement pg refuses to send, which must not leave the connection waiting for a Sync.
import { Client } from 'pg'
import { boundQuery } from '../../lib/pool/bound-query'
import { databaseUrl } from '../support/db'

let client: Client
beforeEach(async () => {
  client = new Client({ connectionString: databaseUrl() })
  await client.connect()
})
afterEach(() => client.end())

const setting = async (name: string) =>
  (await client.query<{ v: string }>(`SELECT current_setting('${name}', true) AS v`)).rows[0]?.v

describe('Function: boundQuery', () => {
  it.each([
    ['without values', undefined, 'SELECT current_setting($$application_name$$) AS v'],
    ['with values', ['x'], 'SELECT current_setting($$application_name$$) || $1 AS v'],
  ])('runs the binds ahead of the statement, %s, and returns only its result', async (_, values, text) => {
    const result = await boundQuery<{ v: string }>(client, ["SET application_name = 'bound'"], text, values)
    expect(result.rows).toEqual([{ v: values ? 'boundx' : 'bound' }])
    expect(await setting('application_name')).toBe('bound')
  })

  it('rolls the binds back when the statement fails', async () => {
    await client.query("SET application_name = 'before'")
    await expect(
      boundQuery(client, ["SET application_name = 'bound'"], 'SELECT 1/$1::int AS v', [0]),
    ).rejects.toMatchObject({ code: '22012' })
    expect(await setting('application_name')).toBe('before')
  })

  it.each([
    ['values that are not an array', 'SELECT 1 AS v', 'not an array'],
    ['several statements', 'SELECT 1 AS v; SELECT 2', undefined],
    ['a transaction statement', 'BEGIN', undefined],
  ])(
    'refuses %s before writing anything: the binds are not run and the next query is answered',
    async (_, text, values) => {
      // pg would refuse values that are not an array only after the binds were written, leaving them
      // without their Sync; combinable() keeps the registry from ever sending such a call.
      await client.query("SET application_name = 'before'")
      await expect(
        boundQuery(client, ["SET application_name = 'bound'"], text, values as never),
      ).rejects.toThrow(new TypeError('boundQuery takes one combinable statement, with values in an array'))
      const next = await client.query<{ n: number }>('SELECT 42 AS n')
      expect(next.rows).toEqual([{ n: 42 }])
      expect(await setting('application_name')).toBe('before')
    },
  )
})
