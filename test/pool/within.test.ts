// The deadline arithmetic: what the middleware derives from Lambda's context, how a bound settles,
// and what a caller gets for each kind of timeout.
import { DeadlineExceededError, invocationDeadline, StatementTimeoutError, toHttp } from '../../lib'
import { within } from '../../lib/pool/within'

describe('invocationDeadline', () => {
  it("is the invocation's remaining time less the margin, from now", () => {
    expect(invocationDeadline({ getRemainingTimeInMillis: () => 10_000 }, 1_000, 5_000)).toBe(14_000)
    expect(invocationDeadline({ getRemainingTimeInMillis: () => 500 }, 1_000, 5_000)).toBe(4_500)
  })

  it('is undefined for a context without a clock', () => {
    expect(invocationDeadline({}, 1_000, 5_000)).toBeUndefined()
    expect(
      invocationDeadline({ getRemainingTimeInMillis: () => Number.NaN as number }, 1_000, 5_000),
    ).toBeUndefined()
  })
})

describe('within', () => {
  it('settles as the work does when it is in time', async () => {
    await expect(within(Promise.resolve(7), 1_000, new Error('late'))).resolves.toBe(7)
    await expect(within(Promise.reject(new Error('own')), 1_000, new Error('late'))).rejects.toThrow('own')
  })

  it('rejects with the timeout error once the bound passes, and swallows the late rejection', async () => {
    let rejectLate: (err: Error) => void = () => {}
    const work = new Promise<never>((_, reject) => {
      rejectLate = reject
    })
    const late = new Error('late')
    await expect(within(work, 10, () => late)).rejects.toBe(late)
    rejectLate(new Error('after the bound')) // must not surface as an unhandled rejection
    await new Promise((r) => setImmediate(r))
  })

  it('sets no timer without a bound', () => {
    const work = new Promise<number>(() => {})
    expect(within(work, Number.POSITIVE_INFINITY, new Error('never'))).toBe(work)
  })
})

describe('toHttp for timeouts', () => {
  it('answers a wait that ran out of time with 503 and Retry-After', () => {
    expect(toHttp(new DeadlineExceededError('x'))).toEqual({
      status: 503,
      code: 'DATABASE_UNAVAILABLE',
      message: expect.any(String),
      headers: { 'retry-after': '1' },
    })
  })

  it('answers an unanswered statement with 504, saying whether it may have taken effect', () => {
    expect(toHttp(new StatementTimeoutError('x', true))).toMatchObject({
      status: 504,
      code: 'OUTCOME_UNKNOWN',
      headers: { 'retry-after': '1' },
    })
    expect(toHttp(new StatementTimeoutError('x', false))).toMatchObject({
      status: 504,
      code: 'DATABASE_TIMEOUT',
      headers: { 'retry-after': '1' },
    })
  })
})
