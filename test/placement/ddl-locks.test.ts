// withLockRetries (ddl-locks.ts) on a real server: it runs fn in a transaction of its own whose
// lock_timeout is attemptMs (100 ms unless told), commits it and returns fn's result, the session's
// own settings back afterwards. An attempt that did not get a lock in time (55P03) or was a
// deadlock's victim (40P01) is rolled back and run again from the start; any other error, a plain
// Error too, is rolled back and thrown at once, the client usable; once totalMs is spent the last
// error is thrown.
import type { Client } from 'pg'
import { withLockRetries } from '../../lib'
import { codeOf, databaseUrl, onServer, uniqueTenant, withAdmin } from '../support/db'

/** Raises `code` from the server, as a lock timeout or a deadlock would. */
const raise = (c: Client, code: string) =>
  c.query(`DO $$ BEGIN RAISE EXCEPTION 'raised' USING ERRCODE = '${code}'; END $$`)

async function world(c: Client): Promise<string> {
  const schema = `tenant_${uniqueTenant('dl')}`
  await c.query(
    `CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.t (x int); CREATE TABLE ${schema}.log (n int)`,
  )
  return schema
}

const rows = async (c: Client, table: string) => (await c.query(`SELECT * FROM ${table} ORDER BY 1`)).rows

const setting = async (c: Client, name: string): Promise<string | undefined> =>
  (await c.query<{ v: string }>('SELECT current_setting($1) AS v', [name])).rows[0]?.v

describe('Function: withLockRetries', () => {
  it('runs fn in a transaction of its own, commits it and returns fn’s result', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid
      await onServer(databaseUrl(), async (other) => {
        const state = async () =>
          (await other.query<{ state: string }>('SELECT state FROM pg_stat_activity WHERE pid = $1', [pid]))
            .rows[0]?.state
        const result = await withLockRetries(c, async () => {
          await c.query(`INSERT INTO ${schema}.t VALUES (1)`)
          // Not yet visible: in a transaction.
          expect(await state()).toBe('idle in transaction')
          expect(await rows(other, `${schema}.t`)).toEqual([])
          return 42
        })
        expect(result).toBe(42)
        expect(await state()).toBe('idle')
        expect(await rows(other, `${schema}.t`)).toEqual([{ x: 1 }])
      })
    })
  })

  it('bounds each lock wait by attemptMs, 100 ms unless told, in its transaction only', async () => {
    await withAdmin(async (c) => {
      await c.query(`SET lock_timeout = '3s'`)
      expect(await withLockRetries(c, () => setting(c, 'lock_timeout'))).toBe('100ms')
      expect(await withLockRetries(c, () => setting(c, 'lock_timeout'), { attemptMs: 250 })).toBe('250ms')
      expect(await withLockRetries(c, () => setting(c, 'lock_timeout'), { totalMs: 5_000 })).toBe('100ms')
      expect(await setting(c, 'lock_timeout')).toBe('3s')
    })
  })

  it('runs an attempt that did not get its lock in time again from the start, the failed one rolled back', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      await onServer(databaseUrl(), async (holder) => {
        await holder.query('BEGIN')
        await holder.query(`LOCK TABLE ${schema}.t IN ACCESS EXCLUSIVE MODE`)
        let attempts = 0
        const result = await withLockRetries(
          c,
          async () => {
            attempts++
            await c.query(`INSERT INTO ${schema}.log VALUES ($1)`, [attempts])
            if (attempts === 2) await holder.query('COMMIT')
            await c.query(`LOCK TABLE ${schema}.t IN SHARE ROW EXCLUSIVE MODE`)
            return attempts
          },
          { attemptMs: 20, totalMs: 60_000 },
        )
        expect(result).toBe(2)
      })
      expect(await rows(c, `${schema}.log`)).toEqual([{ n: 2 }])
    })
  })

  it('retries a deadlock’s victim (40P01) and a lock timeout (55P03), and throws the first other error', async () => {
    await withAdmin(async (c) => {
      const codes = ['40P01', '55P03', '40P01', '42P01', '55P03']
      let attempts = 0
      const outcome = await codeOf(
        withLockRetries(
          c,
          async () => {
            const code = codes[attempts++] as string
            await raise(c, code)
          },
          { attemptMs: 10, totalMs: 60_000 },
        ),
      )
      expect({ outcome, attempts }).toEqual({ outcome: '42P01', attempts: 4 })
      let more = 0
      const result = await withLockRetries(
        c,
        async () => {
          if (more++ === 0) await raise(c, '40P01')
          return 'second'
        },
        { attemptMs: 10 },
      )
      expect({ result, more }).toEqual({ result: 'second', more: 2 })
    })
  })

  it('throws any other error at once, after rolling back, and the client takes statements again', async () => {
    await withAdmin(async (c) => {
      const schema = await world(c)
      let attempts = 0
      const failing = withLockRetries(
        c,
        async () => {
          attempts++
          await c.query(`INSERT INTO ${schema}.t VALUES (1)`)
          await c.query(`SELECT * FROM ${schema}.nowhere`)
        },
        { totalMs: 2_000 },
      )
      expect(await codeOf(failing)).toBe('42P01')
      expect(attempts).toBe(1)
      expect(await rows(c, `${schema}.t`)).toEqual([])
      // Not a database error: thrown as it is, after the roll-back.
      const mine = new Error('not from the server')
      let plain = 0
      await expect(
        withLockRetries(
          c,
          async () => {
            plain++
            await c.query(`INSERT INTO ${schema}.t VALUES (2)`)
            throw mine
          },
          { totalMs: 2_000 },
        ),
      ).rejects.toBe(mine)
      expect(plain).toBe(1)
      expect(await rows(c, `${schema}.t`)).toEqual([])
    })
  })

  it('throws the lock timeout once totalMs is spent', async () => {
    await withAdmin(async (c) => {
      let attempts = 0
      const outcome = await codeOf(
        withLockRetries(
          c,
          async () => {
            attempts++
            await raise(c, '55P03')
          },
          { attemptMs: 10, totalMs: 0 },
        ),
      )
      expect({ outcome, attempts }).toEqual({ outcome: '55P03', attempts: 1 })
      expect(await setting(c, 'lock_timeout')).toBe('0')
    })
  })
})
