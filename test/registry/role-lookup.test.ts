import { RoleLookup } from '../../lib/registry/role-lookup'

describe('Class: RoleLookup', () => {
  let now = 0
  const clock = { now: () => now }
  beforeEach(() => {
    now = 0
  })

  it('waits for the first look-up of a name only, and shares it between concurrent callers', async () => {
    const lookup = jest.fn(async (name: string) => name === 'tenant_own')
    const roles = new RoleLookup(lookup, 60_000, clock)

    expect(await Promise.all([roles.exists('tenant_own'), roles.exists('tenant_own')])).toEqual([true, true])
    expect(await roles.exists('tenant_plain')).toBe(false)
    expect(lookup).toHaveBeenCalledTimes(2)
    now = 59_000
    expect(await roles.exists('tenant_own')).toBe(true)
    expect(lookup).toHaveBeenCalledTimes(2)
  })

  it('answers at once once it has an answer, even while a later look-up never ends', async () => {
    // The look-up of a refresh waits for a budget slot that the asker itself holds: it must not wait.
    let answer: Promise<boolean> = Promise.resolve(false)
    const lookup = jest.fn(() => answer)
    const roles = new RoleLookup(lookup, 60_000, clock)
    expect(await roles.exists('tenant_x')).toBe(false)

    answer = new Promise<boolean>(() => {})
    now = 61_000
    expect(await roles.exists('tenant_x')).toBe(false)
    expect(await roles.exists('tenant_x')).toBe(false)
    // One refresh at a time.
    expect(lookup).toHaveBeenCalledTimes(2)
  })

  it('takes the refreshed answer once it comes, and keeps the last one when a refresh fails', async () => {
    let answer: () => Promise<boolean> = async () => false
    const roles = new RoleLookup(() => answer(), 60_000, clock)
    expect(await roles.exists('tenant_x')).toBe(false)

    // A role made since: the next answer after the refresh says so.
    answer = async () => true
    now = 61_000
    expect(await roles.exists('tenant_x')).toBe(false)
    await new Promise((r) => setImmediate(r))
    expect(await roles.exists('tenant_x')).toBe(true)

    answer = async () => {
      throw new Error('catalog unreachable')
    }
    now = 130_000
    expect(await roles.exists('tenant_x')).toBe(true)
    await new Promise((r) => setImmediate(r))
    expect(await roles.exists('tenant_x')).toBe(true)
  })

  it('fails a first look-up that fails, and looks again on the next call', async () => {
    let fail = true
    const roles = new RoleLookup(
      async () => {
        if (fail) throw new Error('catalog unreachable')
        return true
      },
      60_000,
      clock,
    )
    await expect(roles.exists('tenant_x')).rejects.toThrow('catalog unreachable')
    fail = false
    expect(await roles.exists('tenant_x')).toBe(true)
  })
})
