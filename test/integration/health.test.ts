import { handler } from '../../functions/http/health'
import { resetTenantPools } from '../../lib'

describe('Function: health', () => {
  const saved = process.env.DATABASE_URL
  afterEach(async () => {
    await resetTenantPools()
    process.env.DATABASE_URL = saved
  })

  it('answers 200 when the master pool reaches the database', async () => {
    await expect(handler()).resolves.toMatchObject({ statusCode: 200, body: '{"ok":true}' })
  })

  it('answers 503 with Retry-After and no error text when it cannot', async () => {
    process.env.DATABASE_URL = 'postgres://nobody:secret-pw@127.0.0.1:1/none'
    process.env.TENANT_POOLS_CONNECT_TIMEOUT_MS = '500'

    const res = await handler()

    expect(res.statusCode).toBe(503)
    expect(res.headers['retry-after']).toBe('1')
    expect(res.body).not.toMatch(/secret-pw|127\.0\.0\.1|ECONNREFUSED/)
    delete process.env.TENANT_POOLS_CONNECT_TIMEOUT_MS
  })
})
