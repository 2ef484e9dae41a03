import fc from 'fast-check'
import { ConnectionBudget } from '../../lib/pool/budget'

const claimant = () => {
  const c = { grants: 0, granted: () => void c.grants++ }
  return c
}

describe('Class: ConnectionBudget', () => {
  it('grants at once while slots are free, then queues and asks for a slot to be freed', () => {
    // Prepare
    let shortages = 0
    const budget = new ConnectionBudget(2, () => void shortages++)
    const [a, b, c] = [claimant(), claimant(), claimant()]

    // Act
    budget.claim(a)
    budget.claim(b)
    budget.claim(c)

    // Assess
    expect([a.grants, b.grants, c.grants]).toEqual([1, 1, 0])
    expect({ used: budget.used, waiting: budget.waiting, shortages }).toEqual({
      used: 2,
      waiting: 1,
      shortages: 1,
    })
  })

  it('asks for a slot to be freed only when more claimants wait than slots are already on their way back', async () => {
    // Prepare
    let shortages = 0
    const budget = new ConnectionBudget(1, () => void shortages++)
    const [a, b, c] = [claimant(), claimant(), claimant()]
    budget.claim(a)
    let closed = () => {}
    budget.releaseWhen(new Promise<void>((resolve) => (closed = resolve)))

    // Act: b is served by the slot coming back; c is one too many.
    budget.claim(b)
    const afterB = shortages
    budget.claim(c)

    // Assess
    expect([afterB, shortages]).toEqual([0, 1])
    closed()
    await Promise.resolve()
    await Promise.resolve()
    expect([b.grants, c.grants]).toEqual([1, 0])
  })

  it('stops counting a slot as on its way back once its socket has closed', async () => {
    // Prepare: a's slot comes back to b; c and d then wait with nothing on its way back.
    let shortages = 0
    const budget = new ConnectionBudget(1, () => void shortages++)
    const [a, b, c, d] = [claimant(), claimant(), claimant(), claimant()]
    budget.claim(a)
    let closed = () => {}
    budget.releaseWhen(new Promise<void>((resolve) => (closed = resolve)))
    budget.claim(b)
    closed()
    await new Promise((r) => setImmediate(r))

    // Act
    budget.claim(c)
    budget.claim(d)

    // Assess: each of c and d asks for a slot to be freed.
    expect({ b: b.grants, waiting: budget.waiting, shortages }).toEqual({ b: 1, waiting: 2, shortages: 2 })
  })

  it('keeps a closing connection’s slot until its socket has closed, whoever waits', async () => {
    const budget = new ConnectionBudget(1, () => {})
    const [a, b] = [claimant(), claimant()]
    budget.claim(a)
    budget.claim(b)
    let closed = () => {}
    budget.releaseWhen(new Promise<void>((resolve) => (closed = resolve)))
    await new Promise((r) => setImmediate(r))
    // Still closing: the server may still count it, so b waits.
    expect({ b: b.grants, used: budget.used, waiting: budget.waiting }).toEqual({ b: 0, used: 1, waiting: 1 })
    closed()
    await new Promise((r) => setImmediate(r))
    expect({ b: b.grants, used: budget.used, waiting: budget.waiting }).toEqual({ b: 1, used: 1, waiting: 0 })
  })

  it('hands a released slot to the longest waiting claimant (FIFO)', () => {
    const budget = new ConnectionBudget(1, () => {})
    const [a, b, c] = [claimant(), claimant(), claimant()]
    budget.claim(a)
    budget.claim(b)
    budget.claim(c)

    budget.release()

    expect([b.grants, c.grants]).toEqual([1, 0])
    expect(budget.used).toBe(1)
  })

  it('withdraws a queued claim once, and only a queued one', () => {
    const budget = new ConnectionBudget(1, () => {})
    const [a, b] = [claimant(), claimant()]
    budget.claim(a)
    budget.claim(b)

    expect(budget.withdraw(b)).toBe(true)
    expect(budget.withdraw(b)).toBe(false)
    budget.release()
    expect(b.grants).toBe(0)
    expect(budget.used).toBe(0)
  })

  it('never has more slots in use than its limit, whatever the order of claims and releases', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.boolean(), { maxLength: 200 }),
        (limit, ops) => {
          const budget = new ConnectionBudget(limit, () => {})
          let held = 0
          const holder = { granted: () => void held++ }
          for (const claim of ops) {
            if (claim) budget.claim(holder)
            else if (held > 0) {
              held--
              budget.release()
            }
            expect(budget.used).toBeLessThanOrEqual(limit)
            expect(held).toBe(budget.used)
          }
        },
      ),
    )
  })
})
