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

  it('rejects with the error itself when given one, not a function making it', async () => {
    const late = new Error('late')
    await expect(within(new Promise<never>(() => {}), 10, late)).rejects.toBe(late)
  })

  it('waits the whole bound: work that settles a few turns later, well within it, is not cut short', async () => {
    const soon = new Promise<number>((resolve) => setTimeout(() => resolve(7), 20))
    await expect(within(soon, 60_000, new Error('late'))).resolves.toBe(7)
  })

  it('makes no timeout error once the work has settled: its timer is cleared', async () => {
    const made = jest.fn(() => new Error('late'))
    await expect(within(Promise.resolve(1), 20, made)).resolves.toBe(1)
    await expect(within(Promise.reject(new Error('own')), 20, made)).rejects.toThrow('own')
    // A timer set later than the bound's fires after it: had it not been cleared, it would have run.
    await new Promise((r) => setTimeout(r, 50))
    expect(made).not.toHaveBeenCalled()
  })

  it('lets work go on unbounded when waived() says so as the bound passes, and rejects when it says not', async () => {
    let resolveLate: (n: number) => void = () => {}
    const work = new Promise<number>((resolve) => {
      resolveLate = resolve
    })
    const asked = jest.fn(() => true)
    const bounded = within(work, 10, new Error('late'), asked)
    // Past the bound (a timer set later fires later), then the work ends: its value, not the error.
    await new Promise((r) => setTimeout(r, 30))
    expect(asked).toHaveBeenCalledTimes(1)
    resolveLate(7)
    await expect(bounded).resolves.toBe(7)
    const late = new Error('late')
    await expect(within(new Promise<never>(() => {}), 10, late, () => false)).rejects.toBe(late)
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
