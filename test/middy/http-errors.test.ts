// httpErrors() in process: the answer's body (the request's id included) and how an error is logged.
import middy from '@middy/core'
import type { Context } from 'aws-lambda'
import { HttpError, httpErrors } from '../../lib'
import { memoryLog } from '../support/memory-log'

const answer = async (err: unknown, context?: Partial<Context>) => {
  const { log, entries } = memoryLog()
  const handler = middy()
    .use(httpErrors({ logger: log }))
    .handler(async () => {
      throw err
    })
  const res = (await handler({}, context as Context)) as { statusCode: number; body: string }
  return { status: res.statusCode, body: JSON.parse(res.body), entries }
}

describe('Middleware: httpErrors', () => {
  it('answers with the request’s id from its context, or "unknown" without one', async () => {
    const refused = new HttpError(404, 'NOT_FOUND', 'No such order')
    expect((await answer(refused, { awsRequestId: 'req-42' })).body).toEqual({
      error: { code: 'NOT_FOUND', message: 'No such order', requestId: 'req-42' },
    })
    expect((await answer(refused, {})).body.error.requestId).toBe('unknown')
    // Called without a context at all (a direct call, a test): still an answer.
    const bare = await answer(refused)
    expect([bare.status, bare.body.error.requestId]).toEqual([404, 'unknown'])
  })

  it('logs a server error (500 included) at error level, with what helps and no message of its own', async () => {
    const err = Object.assign(new Error('relation "orders" does not exist'), { code: '42P01' })
    const { status, body, entries } = await answer(err, { awsRequestId: 'req-1' })
    expect(status).toBe(500)
    expect(body.error.message).toBe('Internal error')
    expect(entries.map((e) => e.level)).toEqual(['error'])
    expect(entries[0]?.extra[0]).toMatchObject({
      status: 500,
      errorName: 'Error',
      code: '42P01',
      sqlState: '42P01',
      stack: err.stack,
    })
  })

  it.each([undefined, null])(
    'answers a handler that throws %p with a JSON 500 and logs it',
    async (thrown) => {
      const { status, body, entries } = await answer(thrown, { awsRequestId: 'req-9' })
      expect([status, body]).toEqual([
        500,
        { error: { code: 'INTERNAL', message: 'Internal error', requestId: 'req-9' } },
      ])
      expect(entries.map((e) => [e.level, e.message])).toEqual([['error', 'request failed']])
    },
  )

  it('logs a refusal (4xx) at info level with its status and code only', async () => {
    const { entries } = await answer(new HttpError(403, 'TENANT_SUSPENDED', 'This tenant is suspended'))
    expect(entries.map((e) => [e.level, e.extra[0]])).toEqual([
      ['info', { status: 403, code: 'TENANT_SUSPENDED' }],
    ])
  })

  it('takes the request’s own logger when given a function', async () => {
    const { log, entries } = memoryLog()
    const seen: unknown[] = []
    const handler = middy()
      .use(
        httpErrors({
          logger: (request) => {
            seen.push(request.context)
            return log
          },
        }),
      )
      .handler(async () => {
        throw new HttpError(409, 'CONFLICT', 'exists')
      })
    const context = { awsRequestId: 'req-7' } as Context
    await handler({}, context)
    expect(seen).toEqual([context])
    expect(entries).toHaveLength(1)
  })
})
