// A connection's settings from the options (connector.ts baseConfig): what the options give wins over
// the connection string, and what they leave out keeps the connection string's value.
import { baseConfig } from '../../lib/pool/connector'

describe('Function: baseConfig', () => {
  it("keeps the connection string's TLS settings when the ssl option is not given", () => {
    const { base } = baseConfig({ connectionString: 'postgres://u@h:6000/d?sslmode=no-verify' })
    expect(base).toMatchObject({ host: 'h', port: 6000, database: 'd', ssl: { rejectUnauthorized: false } })
  })

  it('passes an ssl option given as an object or a boolean to pg unchanged, over the connection string', () => {
    const ssl = { rejectUnauthorized: true, servername: 'db.internal' }
    expect(baseConfig({ connectionString: 'postgres://h/d?sslmode=no-verify', ssl }).base.ssl).toBe(ssl)
    // verify-full, not require: pg-connection-string 2.x warns (SECURITY WARNING) of the others.
    expect(baseConfig({ connectionString: 'postgres://h/d?sslmode=verify-full', ssl: false }).base.ssl).toBe(
      false,
    )
    expect(baseConfig({ host: 'h', ssl: true }).base.ssl).toBe(true)
  })

  it('lets host, port, database, user and password options win over the connection string', () => {
    const given = baseConfig(
      {
        connectionString: 'postgres://url-user:url-pw@url-host:6000/url-db',
        host: 'h',
        port: 7000,
        database: 'd',
        user: 'u',
        password: 'p',
      },
      1234,
    )
    expect(given.base).toMatchObject({
      host: 'h',
      port: 7000,
      database: 'd',
      keepAliveInitialDelayMillis: 1234,
    })
    expect(given.base).not.toHaveProperty('user')
    expect(given.base).not.toHaveProperty('password')
    expect([given.user, given.password]).toEqual(['u', 'p'])
    const fromUrl = baseConfig({ connectionString: 'postgres://url-user:url-pw@url-host/url-db' })
    expect([fromUrl.user, fromUrl.password]).toEqual(['url-user', 'url-pw'])
  })
})
