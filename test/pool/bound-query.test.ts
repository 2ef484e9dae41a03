// boundQuery on a real connection (bound-query.ts): a rebind and a statement in one round trip, and
// a statement pg refuses to send, which must not leave the connection waiting for a Sync.
import { Client } from 'pg'
import { boundQuery } from '../../lib/pool/bound-query'
import { databaseUrl } from '../support/db'
import { pg15Label } from '../support/skips'

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

describe('Function: boundQuery, its binds committed first', () => {
  // The servers of the run: 18 reports the search_path and refuses a procedure's ROLLBACK behind
  // uncommitted statements; 15 lets that ROLLBACK undo them.
  const servers: Array<[string, string | undefined, 'refused' | 'undone']> = [
    ['PostgreSQL 18', process.env.DATABASE_URL, 'refused'],
    [pg15Label(), process.env.TEST_PG15_URL, 'undone'],
  ]

  describe.each(servers)('on %s', (_, url, uncommitted) => {
    const run = url ? it : it.skip
    let own: Client
    beforeEach(async () => {
      if (!url) return
      own = new Client({ connectionString: url })
      await own.connect()
    })
    afterEach(() => (url ? own.end() : undefined))
    const appName = async () =>
      (await own.query<{ v: string }>("SELECT current_setting('application_name') AS v")).rows[0]?.v

    run.each([
      ['with values', [1]],
      ['without values', undefined],
    ])(
      'keeps them when the statement (%s) is a procedure that rolls back, whose spelling the text check misses',
      async (_, values) => {
        await own.query(
          'CREATE PROCEDURE pg_temp.undo(n int DEFAULT 0) LANGUAGE plpgsql AS $$BEGIN ROLLBACK; END$$',
        )
        await own.query("SET application_name = 'before'")
        // A nested comment: the text check's comment stripping stops at the first */.
        const call = `/* /* nested */ */ CALL pg_temp.undo(${values ? '$1' : ''})`
        const done = boundQuery(own, ["SET application_name = 'bound'"], call, values, true).then(
          () => 'ran',
          (err: { code?: string }) => err.code,
        )
        // In one simple query (no values) the server refuses the ROLLBACK: the call fails, closed.
        expect(await done).toBe(values ? 'ran' : '2D000')
        expect(await appName()).toBe('bound')
      },
    )

    run(`without it, a procedure that rolls back behind them is ${uncommitted}`, async () => {
      await own.query('CREATE PROCEDURE pg_temp.undo(n int) LANGUAGE plpgsql AS $$BEGIN ROLLBACK; END$$')
      await own.query("SET application_name = 'before'")
      const outcome = await boundQuery(
        own,
        ["SET application_name = 'bound'"],
        '/* /* nested */ */ CALL pg_temp.undo($1)',
        [1],
      ).then(
        () => 'ran',
        (err: { code?: string }) => err.code,
      )
      // What commitFirst guards against: the SET undone under the statement, or at best a refusal.
      expect(outcome).toBe(uncommitted === 'undone' ? 'ran' : '2D000')
      expect(await appName()).toBe('before')
    })

    run('has their UNLISTEN complete when the statement runs, and skips their rows', async () => {
      await own.query('LISTEN somewhere')
      const result = await boundQuery<{ c: string[]; v: number }>(
        own,
        ['UNLISTEN *', 'SELECT pg_advisory_unlock_all()'],
        'SELECT array(SELECT pg_listening_channels())::text[] AS c, $1::int AS v',
        [7],
        true,
      )
      expect(result.rows).toEqual([{ c: [], v: 7 }])
      expect(result.rowCount).toBe(1)
      const simple = await boundQuery<{ c: string[] }>(
        own,
        ['LISTEN again', 'UNLISTEN *', 'SELECT pg_advisory_unlock_all()'],
        'SELECT array(SELECT pg_listening_channels())::text[] AS c',
        undefined,
        true,
      )
      expect(simple.rows).toEqual([{ c: [] }])
    })
  })
})
