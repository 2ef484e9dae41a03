// Whether the server has answered anything of what was just sent on a connection. A FATAL that comes
// before any answer was sent by a backend that never read the statement: it ended first (terminated
// or timed out while the environment was frozen, its FATAL resent by TCP after the thaw). Watched
// only for the first statement on a connection after a possible freeze: the warm path pays nothing.
import type { EventEmitter } from 'node:events'
import type { Client } from 'pg'

// Every message pg's Connection emits for an answer to a statement (or to a binding sent with it),
// as opposed to an error, a ReadyForQuery or something the server sends unasked.
const ANSWERS = new Set([
  'parseComplete',
  'bindComplete',
  'rowDescription',
  'dataRow',
  'commandComplete',
  'noData',
  'emptyQuery',
  'portalSuspended',
  'copyInResponse',
  'copyOutResponse',
  'notice',
])

export class AnswerWatch {
  /** Whether any answer arrived since the watch began. */
  answered = false
  readonly #connection: EventEmitter
  readonly #heard = (message: { name: string }): void => {
    if (!ANSWERS.has(message.name)) return
    this.answered = true
    this.stop()
  }

  /** Starts watching `client`'s connection; call before sending. */
  constructor(client: Client) {
    // pg's Connection is an EventEmitter of protocol messages; @types/pg does not declare it. Its
    // 'message' event carries every message, before the message's own event: one listener, where
    // one per kind of answer cost eleven to add and eleven to remove on every thaw's first statement.
    this.#connection = (client as unknown as { connection: EventEmitter }).connection
    this.#connection.on('message', this.#heard)
  }

  /** Stops watching; idempotent. */
  stop(): void {
    this.#connection.off('message', this.#heard)
  }
}
