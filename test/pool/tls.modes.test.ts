import { ConnectError, InvalidOptionsError, rdsIamCredentials, TenantPools } from '../../lib'
import { endTestPools, testPools } from '../support/db'

const SSL = 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'

/** The CA of the embedded test server (made by the jest global setup). */
const caPath = (): string => {
  const path = process.env.TEST_PG_CA_PATH
  if (!path)
    throw new Error('TEST_PG_CA_PATH is not set: with your own DATABASE_URL, point it at the server CA')
  return path
}

describe('Behaviour: TLS modes', () => {
  afterEach(endTestPools)

  it('require: encrypts without checking the certificate', async () => {
    const { pools } = testPools({ ssl: 'require' })
    await expect(pools.master.query(SSL)).resolves.toMatchObject({ rows: [{ ssl: true }] })
  })

  it('verify-full: accepts a certificate that chains to the given CA and names the host', async () => {
    const { pools } = testPools({ ssl: 'verify-full', sslCaPath: caPath() })
    await expect(pools.master.query(SSL)).resolves.toMatchObject({ rows: [{ ssl: true }] })
  })

  it('verify-full: refuses a self-signed certificate it was not told to trust', async () => {
    const { pools } = testPools({ ssl: 'verify-full' })
    const err = await pools.master.query('SELECT 1').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConnectError)
    expect((err as ConnectError).cause).toMatchObject({
      code: expect.stringMatching(/SELF_SIGNED|UNABLE_TO_VERIFY/),
    })
  })

  it('disable: plain TCP', async () => {
    const { pools } = testPools({ ssl: 'disable' })
    await expect(pools.master.query(SSL)).resolves.toMatchObject({ rows: [{ ssl: false }] })
  })

  it('names a CA bundle it cannot read', () => {
    expect(() => new TenantPools({ ssl: 'verify-full', sslCaPath: '/nonexistent/ca.pem' })).toThrow(
      /sslCaPath \/nonexistent\/ca.pem/,
    )
  })

  it('refuses RDS IAM tokens without TLS', () => {
    const credentials = rdsIamCredentials({ host: 'db.example', user: 'app', region: 'eu-west-1' })
    expect(() => new TenantPools({ credentials })).toThrow(InvalidOptionsError)
    expect(() => new TenantPools({ credentials, ssl: 'disable' })).toThrow(/must only travel over TLS/)
    return new TenantPools({ credentials, ssl: 'require' }).end()
  })
})
