// How many connections the current call chain already holds (inside withClient or transaction
// callbacks), so that a checkout that cannot be served can say it was nested. Only the callbacks
// pay for the context; query() does not.
import { AsyncLocalStorage } from 'node:async_hooks'

const held = new AsyncLocalStorage<number>()

/** Runs `fn` counted as holding one more connection. */
export function holding<T>(fn: () => Promise<T>): Promise<T> {
  return held.run((held.getStore() ?? 0) + 1, fn)
}

/** Connections the current call chain holds. */
export const heldByThisCall = (): number => held.getStore() ?? 0
