// One physical connection as the pool sees it: the pg client plus the timestamps the pool's
// decisions need (lifetime, idle time) and whether the socket is known to be dead.
import type { Client } from 'pg'

export class PooledConnection {
  readonly client: Client
  readonly createdAt: number
  /** When it last went idle; 0 while it has never been idle (a fresh connection needs no check). */
  idleSince = 0
  /** The socket reported an error or closed: never hand it out again. */
  lost = false

  constructor(client: Client, now: number) {
    this.client = client
    this.createdAt = now
  }

  /** True when the session may carry state a next caller must not inherit. */
  get dirty(): boolean {
    return this.lost || this.client.getTransactionStatus() !== 'I'
  }
}
