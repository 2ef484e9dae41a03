// What the login pools report, turned into the registry's counters and log lines.
import { isServerKill, sqlState } from '../sqlstate'
import type { Log, PoolEvents } from '../types'
import type { OwnCounters } from './stats'

/** `closeAllIdle` gives a full server back our idle connections; it returns how many it closed. */
export function poolEvents(c: OwnCounters, log: Log, closeAllIdle: () => number): PoolEvents {
  return {
    opened: () => c.connectionsOpened++,
    closed: () => c.connectionsClosed++,
    reused: () => c.connectionsReused++,
    acquireTimedOut: () => c.acquireTimeouts++,
    serverFull: (key) => {
      c.serverFullRetries++
      // Our own idle connections are what we can give back to a full server.
      log.warn('server out of connections: retrying with backoff', {
        poolKey: key,
        idleClosed: closeAllIdle(),
      })
    },
    credentialsRefused: (key) => {
      c.credentialRefreshes++
      log.info('credentials refused (28P01): refreshing them and retrying once', { poolKey: key })
    },
    connectFailed: (err) => {
      c.connectFailures++
      log.warn('connection attempt failed', { code: sqlState(err), cause: sqlState(err.cause) })
    },
    // Routine (a few an hour at most): counted, not logged.
    retiredBySchemas: () => c.connectionsRetiredBySchemas++,
    lost: (key, err) => {
      c.connectionsLost++
      if (isServerKill(err)) c.serverKills++
      // An idle connection killed by the server is routine in Lambda; log it, never throw it.
      log.info('connection lost', { poolKey: key, sqlState: sqlState(err) })
    },
  }
}
