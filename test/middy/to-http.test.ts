import {
  ConnectError,
  ConnectionLostError,
  CredentialsError,
  DeadlineExceededError,
  HttpError,
  InvalidTenantError,
  PoolExhaustedError,
  PoolsEndedError,
  SecretUnreadableError,
  StatementTimeoutError,
  TenantMovingError,
  toHttp,
} from '../../lib'

const pgError = (
  code: string,
  message = 'duplicate key value violates unique constraint "orders_reference_key"',
) =>
  Object.assign(new Error(message), {
    code,
    severity: 'ERROR',
    detail: 'Key (reference)=(secret-ref) already exists.',
  })

describe('Function: toHttp', () => {
  it.each([
    [new InvalidTenantError('bad'), 400, 'INVALID_TENANT'],
    [new HttpError(404, 'NOT_FOUND', 'No such order'), 404, 'NOT_FOUND'],
    [
      Object.assign(new Error('Invalid or malformed JSON was provided'), { statusCode: 422, expose: true }),
      422,
      'MALFORMED_JSON',
    ],
    [
      Object.assign(new Error('Unsupported Media Type'), { statusCode: 415, expose: true }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    [pgError('23505'), 409, 'CONFLICT'],
    [pgError('57014', 'canceling statement due to statement timeout'), 504, 'STATEMENT_TIMEOUT'],
    [pgError('22P02', 'invalid input syntax for type uuid'), 400, 'INVALID_VALUE'],
    [pgError('22003', 'value out of range for type integer'), 400, 'INVALID_VALUE'],
    [pgError('22021', 'invalid byte sequence for encoding "UTF8": 0x00'), 400, 'INVALID_VALUE'],
  ])('%p → %i %s', (err, status, code) => {
    expect(toHttp(err)).toMatchObject({ status, code })
  })

  it.each([
    [new PoolExhaustedError('all in use'), 'POOL_EXHAUSTED'],
    [new ConnectError('refused'), 'DATABASE_UNAVAILABLE'],
    [new ConnectionLostError('lost', { mayHaveRun: false }), 'DATABASE_UNAVAILABLE'],
    [new CredentialsError('provider failed'), 'CREDENTIALS_UNAVAILABLE'],
    [new SecretUnreadableError('app/tenants/x', 'it does not exist'), 'CREDENTIALS_UNAVAILABLE'],
    [new PoolsEndedError('ended'), 'DATABASE_UNAVAILABLE'],
    [pgError('53300', 'sorry, too many clients already'), 'DATABASE_UNAVAILABLE'],
    [pgError('57P01', 'terminating connection due to administrator command'), 'DATABASE_UNAVAILABLE'],
    [pgError('08006', 'connection failure'), 'DATABASE_UNAVAILABLE'],
    [pgError('40001', 'could not serialize access'), 'DATABASE_UNAVAILABLE'],
  ])('%p → 503 %s with Retry-After', (err, code) => {
    expect(toHttp(err)).toMatchObject({ status: 503, code, headers: { 'retry-after': '1' } })
  })

  it('answers anything else with a bare 500 that shows no SQL, detail or stack', () => {
    const answer = toHttp(pgError('42601', 'syntax error at or near "SELEC"'))
    expect(answer).toEqual({ status: 500, code: 'INTERNAL', message: 'Internal error', headers: {} })
    expect(toHttp(new TypeError('x is undefined'))).toMatchObject({ status: 500, message: 'Internal error' })
  })

  it.each([undefined, null, 0, '', 'a string'])(
    'answers a thrown %p with a bare 500, not a TypeError',
    (thrown) => {
      expect(toHttp(thrown)).toEqual({
        status: 500,
        code: 'INTERNAL',
        message: 'Internal error',
        headers: {},
      })
    },
  )

  it('does not leak a database error’s detail in a mapped answer', () => {
    expect(JSON.stringify(toHttp(pgError('23505')))).not.toContain('secret-ref')
  })

  it('ignores a statusCode that is not marked exposable', () => {
    expect(toHttp(Object.assign(new Error('internal thing'), { statusCode: 400 }))).toMatchObject({
      status: 500,
    })
  })
})

describe('Function: toHttp, a lost connection', () => {
  const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })
  const cases: Array<[Error, number, string]> = [
    [new ConnectionLostError('lost', { cause: reset, mayHaveRun: true }), 504, 'OUTCOME_UNKNOWN'],
    [new ConnectionLostError('lost', { cause: reset, mayHaveRun: false }), 503, 'DATABASE_UNAVAILABLE'],
    ...['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH'].map((code): [Error, number, string] => [
      Object.assign(new Error(code), { code }),
      503,
      'DATABASE_UNAVAILABLE',
    ]),
  ]
  it.each(cases)('%p → %i %s with Retry-After, never a 500', (err, status, code) => {
    expect(toHttp(err)).toMatchObject({ status, code, headers: { 'retry-after': '1' } })
  })
})

// The whole answer, message included: the caller reads the message, and a 503 or 504 tells it when
// to retry.
describe('Function: toHttp, the whole answer', () => {
  const retry = { 'retry-after': '1' }
  const unavailable = {
    status: 503,
    code: 'DATABASE_UNAVAILABLE',
    message: 'The database is unavailable; retry shortly',
    headers: retry,
  }
  it.each<[string, unknown, unknown]>([
    [
      'a statement timeout that may have run',
      new StatementTimeoutError('x', true),
      {
        status: 504,
        code: 'OUTCOME_UNKNOWN',
        message: 'The database did not answer in time; the request may or may not have taken effect',
        headers: retry,
      },
    ],
    [
      'a statement timeout that did not run',
      new StatementTimeoutError('x', false),
      {
        status: 504,
        code: 'DATABASE_TIMEOUT',
        message: 'The database did not answer in time; the request did not take effect',
        headers: retry,
      },
    ],
    [
      'a tenant being moved',
      new TenantMovingError('acme is moving'),
      {
        status: 503,
        code: 'TENANT_MOVING',
        message: 'This tenant is being moved; writes resume shortly',
        headers: retry,
      },
    ],
    [
      'a write refused by the move’s fence (SQLSTATE TPM01)',
      pgError('TPM01', 'tenant acme is fenced'),
      {
        status: 503,
        code: 'TENANT_MOVING',
        message: 'This tenant is being moved; writes resume shortly',
        headers: retry,
      },
    ],
    ['a deadline exceeded', new DeadlineExceededError('x'), unavailable],
    [
      'an exhausted pool',
      new PoolExhaustedError('all in use'),
      {
        status: 503,
        code: 'POOL_EXHAUSTED',
        message: 'Too many requests for this tenant; retry shortly',
        headers: retry,
      },
    ],
    [
      'an unreadable secret',
      new SecretUnreadableError('app/tenants/x', 'it does not exist'),
      {
        status: 503,
        code: 'CREDENTIALS_UNAVAILABLE',
        message: 'The database login is unavailable; retry shortly',
        headers: retry,
      },
    ],
    [
      'a connection lost under a write',
      new ConnectionLostError('lost', { mayHaveRun: true }),
      {
        status: 504,
        code: 'OUTCOME_UNKNOWN',
        message: 'The connection to the database was lost; the request may or may not have taken effect',
        headers: retry,
      },
    ],
    ['a refused connection', new ConnectError('refused'), unavailable],
    [
      'a unique violation',
      pgError('23505'),
      { status: 409, code: 'CONFLICT', message: 'A resource with these values already exists', headers: {} },
    ],
    [
      'a cancelled statement',
      pgError('57014', 'canceling statement due to statement timeout'),
      { status: 504, code: 'STATEMENT_TIMEOUT', message: 'The database took too long', headers: {} },
    ],
    [
      'a value out of range',
      pgError('22003', 'value out of range for type integer'),
      {
        status: 400,
        code: 'INVALID_VALUE',
        message: 'A value in the request is out of range or malformed',
        headers: {},
      },
    ],
    ['too many connections', pgError('53300', 'sorry, too many clients already'), unavailable],
    ['a deadlock', pgError('40P01', 'deadlock detected'), unavailable],
  ])('%s', (_, err, answer) => {
    expect(toHttp(err)).toEqual(answer)
  })

  it.each(['22P02', '22008', '22003', '22P05', '22021', '22007'])(
    'answers SQLSTATE %s with 400 INVALID_VALUE',
    (code) => {
      expect(toHttp(pgError(code, 'bad value'))).toMatchObject({ status: 400, code: 'INVALID_VALUE' })
    },
  )
})

describe('Function: toHttp, what middy throws', () => {
  const middyError = (statusCode: number, message = 'from middy') =>
    Object.assign(new Error(message), { statusCode, expose: true })

  it.each([
    [400, 'BAD_REQUEST'],
    [413, 'PAYLOAD_TOO_LARGE'],
    [415, 'UNSUPPORTED_MEDIA_TYPE'],
    [422, 'MALFORMED_JSON'],
    // A 4xx without a code of its own
    [405, 'BAD_REQUEST'],
    [499, 'BAD_REQUEST'],
  ])('answers an exposable %i with its status, %s and its message', (status, code) => {
    expect(toHttp(middyError(status))).toEqual({ status, code, message: 'from middy', headers: {} })
  })

  it.each([399, 500, 503])('answers an exposable %i as a bare 500, its message untold', (status) => {
    expect(toHttp(middyError(status, 'internal detail'))).toEqual({
      status: 500,
      code: 'INTERNAL',
      message: 'Internal error',
      headers: {},
    })
  })
})
