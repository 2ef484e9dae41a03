// What a login pool reports becomes the registry's counters and log lines (pool-events.ts): each
// event counts once, in its own counter, and logs what an operator needs and nothing else.

import { poolEvents } from '../../lib/registry/pool-events'
import { newCounters } from '../../lib/registry/stats'
import type { Log } from '../../lib/types'

const pgError = (code: string, cause?: unknown) =>
  Object.assign(new Error('server said no', { cause }), { code })

function setup() {
  const counters = newCounters()
  const lines: [string, string, Record<string, unknown>][] = []
  const at =
    (level: string) =>
    (message: string, ...extra: Record<string, unknown>[]) =>
      lines.push([level, message, Object.assign({}, ...extra)])
  const log: Log = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
  let idleClosed = 0
  const events = poolEvents(counters, log, () => {
    idleClosed++
    return 3
  })
  const changed = () =>
    Object.fromEntries(Object.entries(counters).filter(([, n]) => n !== 0)) as Partial<typeof counters>
  return { events, lines, changed, idleClosedCalls: () => idleClosed }
}

describe('Function: poolEvents', () => {
  it.each([
    ['opened', 'connectionsOpened'],
    ['closed', 'connectionsClosed'],
    ['reused', 'connectionsReused'],
    ['acquireTimedOut', 'acquireTimeouts'],
  ] as const)('counts %s in %s, and only there', (event, counter) => {
    const { events, lines, changed } = setup()
    events[event]()
    events[event]()
    expect(changed()).toEqual({ [counter]: 2 })
    expect(lines).toEqual([])
  })

  it('gives a full server every idle connection back, and says how many, with the scope', () => {
    const { events, lines, changed, idleClosedCalls } = setup()
    events.serverFull('acme')
    expect(changed()).toEqual({ serverFullRetries: 1 })
    expect(idleClosedCalls()).toBe(1)
    expect(lines).toEqual([
      ['warn', 'server out of connections: retrying with backoff', { poolKey: 'acme', idleClosed: 3 }],
    ])
  })

  it('counts a credentials refresh and says which scope asked for it', () => {
    const { events, lines, changed } = setup()
    events.credentialsRefused('acme:billing')
    expect(changed()).toEqual({ credentialRefreshes: 1 })
    expect(lines).toEqual([
      ['info', 'credentials refused (28P01): refreshing them and retrying once', { poolKey: 'acme:billing' }],
    ])
  })

  it('counts a failed connection attempt and logs its SQLSTATE and its cause’s, not its message', () => {
    const { events, lines, changed } = setup()
    events.connectFailed(pgError('08006', pgError('28P01')))
    expect(changed()).toEqual({ connectFailures: 1 })
    expect(lines).toEqual([['warn', 'connection attempt failed', { code: '08006', cause: '28P01' }]])
  })

  it('counts a connection retired by maxSchemasPerConnection, and logs nothing (it is routine)', () => {
    const { events, lines, changed } = setup()
    events.retiredBySchemas('acme')
    expect(changed()).toEqual({ connectionsRetiredBySchemas: 1 })
    expect(lines).toEqual([])
  })

  it('counts a lost connection, and a server kill only when the server ended the session', () => {
    const { events, lines, changed } = setup()
    events.lost('acme', pgError('57P01'))
    events.lost('acme', pgError('57P05'))
    events.lost('acme', new Error('read ECONNRESET'))
    expect(changed()).toEqual({ connectionsLost: 3, serverKills: 2 })
    expect(lines.map(([level, message, extra]) => [level, message, extra.sqlState])).toEqual([
      ['info', 'connection lost', '57P01'],
      ['info', 'connection lost', '57P05'],
      ['info', 'connection lost', undefined],
    ])
  })
})
