// A scope's own bookkeeping (scope-use.ts): when it counts as quiet, and when it has drained.
import { ScopeUse } from '../../lib/pool/scope-use'

const scopeUse = () =>
  new ScopeUse(
    { key: 'a', tenantId: 'a', app: null, schema: 'a', cluster: 'main', readOnly: false, onReader: false },
    'test',
    0,
  )
const state = (p: Promise<unknown>) =>
  Promise.race([p.then(() => 'drained'), new Promise((r) => setTimeout(() => r('pending'), 20))])

describe('Class: ScopeUse', () => {
  it('is quiet only when no call holds, awaits or is on its way to a connection', () => {
    const s = scopeUse()
    expect(s.quiet).toBe(true)
    for (const field of ['active', 'waiting', 'arriving'] as const) {
      s[field] = 1
      expect(s.quiet).toBe(false)
      s[field] = 0
    }
    expect(s.quiet).toBe(true)
  })

  it('has drained only once its closing sockets have closed', async () => {
    const s = scopeUse()
    expect(await state(s.drained())).toBe('drained')
    let close = () => {}
    s.closing(new Promise<void>((resolve) => (close = resolve)))
    const drained = s.drained()
    expect(await state(drained)).toBe('pending')
    close()
    expect(await state(drained)).toBe('drained')
  })

  it('has drained only once its calls have given their connections back', async () => {
    const s = scopeUse()
    s.active = 1
    const drained = s.drained()
    expect(await state(drained)).toBe('pending')
    s.active = 0
    s.checkDrained()
    expect(await state(drained)).toBe('drained')
  })
})
