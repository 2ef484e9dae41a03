import fc from 'fast-check'
import { ConnectionBudget } from '../../lib/pool/budget'
import { CappedBudget } from '../../lib/pool/capped-budget'

const claimant = () => {
  const c = { grants: 0, granted: () => void c.grants++ }
  return c
}

describe('Class: CappedBudget', () => {
  it('grants within the cluster cap, and queues past it though the environment has room', () => {
    const env = new ConnectionBudget(4, () => {})
    let shortages = 0
    const b = new CappedBudget(new ConnectionBudget(2, () => void shortages++), env)
    const [x, y, z] = [claimant(), claimant(), claimant()]

    b.claim(x)
    b.claim(y)
    b.claim(z)

    expect([x.grants, y.grants, z.grants]).toEqual([1, 1, 0])
    expect({ env: env.used, cluster: b.used, waiting: b.waiting, shortages }).toEqual({
      env: 2,
      cluster: 2,
      waiting: 1,
      shortages: 1,
    })
    b.release()
    expect(z.grants).toBe(1)
    expect({ env: env.used, cluster: b.used }).toEqual({ env: 2, cluster: 2 })
  })

  it('waits for the environment when another cluster holds its slots, holding one cluster slot', () => {
    const env = new ConnectionBudget(2, () => {})
    const other = claimant()
    env.claim(other)
    env.claim(other)
    const b = new CappedBudget(new ConnectionBudget(2, () => {}), env)
    const x = claimant()

    b.claim(x)
    expect({ grants: x.grants, cluster: b.used, envWaiting: env.waiting }).toEqual({
      grants: 0,
      cluster: 1,
      envWaiting: 1,
    })
    // Withdrawn while queued at the environment: its cluster slot comes back too.
    expect(b.withdraw(x)).toBe(true)
    expect({ cluster: b.used, envWaiting: env.waiting }).toEqual({ cluster: 0, envWaiting: 0 })
    expect(b.withdraw(x)).toBe(false)
  })

  it('withdraws a claim still queued at the cap, which held nothing', () => {
    const env = new ConnectionBudget(4, () => {})
    const b = new CappedBudget(new ConnectionBudget(1, () => {}), env)
    const [x, y] = [claimant(), claimant()]
    b.claim(x)
    b.claim(y)
    expect({ waiting: b.waiting, envUsed: env.used }).toEqual({ waiting: 1, envUsed: 1 })
    expect(b.withdraw(y)).toBe(true)
    expect({ waiting: b.waiting, cluster: b.used, envUsed: env.used, y: y.grants }).toEqual({
      waiting: 0,
      cluster: 1,
      envUsed: 1,
      y: 0,
    })
    // Nothing is owed to y any more: a release goes back to both budgets.
    b.release()
    expect({ cluster: b.used, envUsed: env.used, y: y.grants }).toEqual({ cluster: 0, envUsed: 0, y: 0 })
  })

  it('keeps a closing connection’s slots, in the cluster and the environment, until it has closed', async () => {
    const env = new ConnectionBudget(4, () => {})
    const b = new CappedBudget(new ConnectionBudget(2, () => {}), env)
    b.claim(claimant())
    let closed = () => {}
    b.releaseWhen(new Promise<void>((resolve) => (closed = resolve)))
    expect({ cluster: b.used, envUsed: env.used }).toEqual({ cluster: 1, envUsed: 1 })
    closed()
    await new Promise((r) => setImmediate(r))
    expect({ cluster: b.used, envUsed: env.used }).toEqual({ cluster: 0, envUsed: 0 })
  })

  it('reports the longest wait of another claimant, at the cap or at the environment', () => {
    let now = 0
    const env = new ConnectionBudget(
      1,
      () => {},
      () => now,
    )
    const other = claimant()
    env.claim(other) // the environment is full
    const b = new CappedBudget(
      new ConnectionBudget(
        1,
        () => {},
        () => now,
      ),
      env,
    )
    const [x, y, z] = [claimant(), claimant(), claimant()]
    now = 100
    b.claim(x) // wins the cluster's slot, queues at the environment since 100
    now = 200
    b.claim(y) // queues at the cap since 200
    expect(b.oldestClaimSince(z)).toBe(100)
    expect(b.oldestClaimSince(x)).toBe(200)
  })

  it('never exceeds the cap nor the environment budget, whatever the order of claims and releases', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ cluster: fc.integer({ min: 0, max: 2 }), release: fc.boolean() }), {
          maxLength: 60,
        }),
        (steps) => {
          const env = new ConnectionBudget(4, () => {})
          const caps = [2, 3, 4]
          const clusters = caps.map((cap) => new CappedBudget(new ConnectionBudget(cap, () => {}), env))
          const held = [0, 0, 0]
          const claimants = clusters.map((_, i) => ({
            granted: () => {
              held[i] = (held[i] ?? 0) + 1
            },
          }))
          for (const { cluster, release } of steps) {
            const budget = clusters[cluster] as CappedBudget
            if (release && (held[cluster] as number) > 0) {
              held[cluster] = (held[cluster] as number) - 1
              budget.release()
            } else budget.claim(claimants[cluster] as { granted: () => void })
            for (const [i, n] of held.entries()) expect(n).toBeLessThanOrEqual(caps[i] as number)
            expect(held.reduce((a, n) => a + n, 0)).toBeLessThanOrEqual(4)
            // Every environment slot granted is a connection some cluster holds: none leaks.
            expect(env.used).toBe(held.reduce((a, n) => a + n, 0))
          }
        },
      ),
    )
  })
})
