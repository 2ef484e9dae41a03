import { isConnectionLost, isServerKill, sqlState } from '../lib'

const err = (code?: string) => Object.assign(new Error('whatever the server said'), code ? { code } : {})

describe('Module: sqlstate', () => {
  it.each(['57P01', '57P02', '57P03', '57P05', '08000', '08006', '08P01', 'ECONNRESET', 'EPIPE'])(
    'treats %s as a lost connection',
    (code) => {
      expect(isConnectionLost(err(code))).toBe(true)
    },
  )

  it.each(['23505', '42P01', '57014', '40001', '28P01', '53300', undefined])(
    'treats %s as a statement error',
    (code) => {
      expect(isConnectionLost(err(code))).toBe(false)
    },
  )

  it('treats any FATAL or PANIC from the server as a lost connection, whatever its SQLSTATE', () => {
    expect(isConnectionLost(Object.assign(err('25P04'), { severity: 'FATAL' }))).toBe(true)
    expect(isConnectionLost(Object.assign(err('XX000'), { severity: 'PANIC' }))).toBe(true)
    expect(isConnectionLost(Object.assign(err('23505'), { severity: 'ERROR' }))).toBe(false)
  })

  it('calls only the server ending a session a kill', () => {
    expect(isServerKill(err('57P01'))).toBe(true)
    expect(isServerKill(err('57P05'))).toBe(true)
    expect(isServerKill(err('08006'))).toBe(false)
  })

  it('reads the code, never the message', () => {
    expect(isConnectionLost(new Error('terminating connection due to administrator command'))).toBe(false)
    expect(sqlState(null)).toBeUndefined()
    expect(sqlState({ code: 42 })).toBeUndefined()
  })
})
