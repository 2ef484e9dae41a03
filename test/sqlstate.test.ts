import { isConnectionLost, isServerKill, sqlState } from '../lib'
import {
  DEADLOCK_DETECTED,
  INVALID_PASSWORD,
  INVALID_SCHEMA_NAME,
  isSocketLost,
  isSocketReset,
  LOCK_NOT_AVAILABLE,
  PROTOCOL_VIOLATION,
  QUERY_CANCELED,
  TENANT_FENCED,
  TOO_MANY_CONNECTIONS,
  UNDEFINED_TABLE,
} from '../lib/sqlstate'

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

  it.each(['57P01', '57P02', '57P03', '57P05'])('calls %s the server ending the session', (code) => {
    expect(isServerKill(err(code))).toBe(true)
  })

  it.each(['08006', '57014', 'ECONNRESET', '', undefined])('does not call %s a kill', (code) => {
    expect(isServerKill(err(code))).toBe(false)
  })

  it.each(['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTCONN'])(
    'calls %s a socket lost, and a lost connection',
    (code) => {
      expect(isSocketLost(err(code))).toBe(true)
      expect(isConnectionLost(err(code))).toBe(true)
    },
  )

  it.each(['57P01', '08006', 'ECONNABORTED', '', undefined])('does not call %s a socket lost', (code) => {
    expect(isSocketLost(err(code))).toBe(false)
  })

  it('calls only ECONNRESET and EPIPE a reset: the peer refused what was sent', () => {
    expect(isSocketReset(err('ECONNRESET'))).toBe(true)
    expect(isSocketReset(err('EPIPE'))).toBe(true)
    for (const code of ['ETIMEDOUT', 'ECONNREFUSED', 'ENOTCONN', '57P01', '', undefined]) {
      expect(isSocketReset(err(code))).toBe(false)
    }
  })

  it('names the SQLSTATEs it switches on as PostgreSQL (and the fence) define them', () => {
    expect({
      TOO_MANY_CONNECTIONS,
      INVALID_PASSWORD,
      PROTOCOL_VIOLATION,
      QUERY_CANCELED,
      TENANT_FENCED,
      UNDEFINED_TABLE,
      INVALID_SCHEMA_NAME,
      LOCK_NOT_AVAILABLE,
      DEADLOCK_DETECTED,
    }).toEqual({
      TOO_MANY_CONNECTIONS: '53300',
      INVALID_PASSWORD: '28P01',
      PROTOCOL_VIOLATION: '08P01',
      QUERY_CANCELED: '57014',
      TENANT_FENCED: 'TPM01',
      UNDEFINED_TABLE: '42P01',
      INVALID_SCHEMA_NAME: '3F000',
      LOCK_NOT_AVAILABLE: '55P03',
      DEADLOCK_DETECTED: '40P01',
    })
  })

  it('reads the code, never the message', () => {
    expect(isConnectionLost(new Error('terminating connection due to administrator command'))).toBe(false)
    expect(sqlState(null)).toBeUndefined()
    expect(sqlState({ code: 42 })).toBeUndefined()
  })
})
