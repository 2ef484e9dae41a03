// AnswerWatch on a real connection: what counts as an answer (a row, a notice), what does not (an
// error alone), and that it leaves no listener on pg's Connection behind, once answered or stopped.
import type { EventEmitter } from 'node:events'
import { Client } from 'pg'
import { AnswerWatch } from '../../lib/pool/answer-watch'
import { databaseUrl } from '../support/db'

const connectionOf = (client: Client) => (client as unknown as { connection: EventEmitter }).connection

describe('AnswerWatch', () => {
  let client: Client
  let baseline: number
  beforeAll(async () => {
    client = new Client({ connectionString: databaseUrl() })
    await client.connect()
  })
  beforeEach(() => {
    baseline = connectionOf(client).listenerCount('message')
  })
  afterAll(() => client.end())

  it('is answered by a row, and stops listening by itself once answered', async () => {
    const watch = new AnswerWatch(client)
    expect(watch.answered).toBe(false)
    expect(connectionOf(client).listenerCount('message')).toBe(baseline + 1)
    await client.query('SELECT 1')
    expect(watch.answered).toBe(true)
    // No stop() called: the first answer ended the watch.
    expect(connectionOf(client).listenerCount('message')).toBe(baseline)
  })

  it('is not answered by an error alone (nor by the ReadyForQuery after it), and stop() removes its listener', async () => {
    const watch = new AnswerWatch(client)
    await expect(client.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' })
    expect(watch.answered).toBe(false)
    expect(connectionOf(client).listenerCount('message')).toBe(baseline + 1)
    watch.stop()
    watch.stop() // idempotent
    expect(connectionOf(client).listenerCount('message')).toBe(baseline)
    // Stopped: a later answer is not its business.
    await client.query('SELECT 1')
    expect(watch.answered).toBe(false)
  })

  it('counts a notice sent before an error as an answer: the statement was read and begun', async () => {
    const watch = new AnswerWatch(client)
    await expect(
      client.query("DO $$ BEGIN RAISE NOTICE 'begun'; RAISE EXCEPTION 'then failed'; END $$"),
    ).rejects.toThrow('then failed')
    expect(watch.answered).toBe(true)
  })
})
