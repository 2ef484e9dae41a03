import { inspect } from 'node:util'
import { InvalidOptionsError, TenantPools } from '../../lib'

const PASSWORD = 'pw-Options-42xq'

describe('Class: TenantPools keeps configured passwords to itself', () => {
  it('shows no password in inspect, JSON or stats()', async () => {
    const pools = new TenantPools({
      connectionString: `postgres://app:${PASSWORD}@127.0.0.1:1/db`,
      password: PASSWORD,
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    })
    try {
      const seen = [
        inspect(pools, { depth: 10, showHidden: true }),
        JSON.stringify(pools),
        JSON.stringify(pools.stats()),
      ]
      expect(seen.join()).not.toContain(PASSWORD)
    } finally {
      await pools.end()
    }
  })

  it('does not echo option values in validation errors', () => {
    const err = (() => {
      try {
        new TenantPools({ password: PASSWORD, budget: 'x' as never })
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(InvalidOptionsError)
    expect(inspect(err, { depth: 10 })).not.toContain(PASSWORD)
  })
})
