// A TCP proxy in front of a plain-text PostgreSQL that holds back, for `holdMs`, each ReadyForQuery
// that follows an ErrorResponse, and everything after it. pg settles a failed statement at its
// ErrorResponse; when the ReadyForQuery comes in a later chunk, as it may from a busy or distant
// server, the connection is not yet ready to be given back.
import { tcpProxy } from './tcp-proxy'

const ERROR_RESPONSE = 0x45 // 'E'
const READY_FOR_QUERY = 0x5a // 'Z'

export interface LateReadyProxy {
  port: number
  /** ReadyForQuery messages held back so far. */
  readonly held: number
  close(): Promise<void>
}

export async function lateReadyProxy(target: URL, holdMs: number): Promise<LateReadyProxy> {
  let held = 0
  const proxy = await tcpProxy(target, (client, upstream) => {
    upstream.once('close', () => client.destroy())
    client.once('close', () => upstream.destroy())
    client.pipe(upstream)
    // The server's side, cut into whole messages (type byte, then a length that counts itself).
    let pending = Buffer.alloc(0)
    let afterError = false
    let sent = Promise.resolve()
    const send = (bytes: Buffer, delayMs: number) => {
      sent = sent.then(async () => {
        if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs).unref())
        if (!client.destroyed) client.write(bytes)
      })
    }
    upstream.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk])
      let start = 0
      let at = 0
      while (pending.length - at >= 5) {
        const end = at + 1 + pending.readUInt32BE(at + 1)
        if (end > pending.length) break
        const type = pending[at]
        if (type === READY_FOR_QUERY && afterError) {
          send(pending.subarray(start, at), 0)
          start = at
          held++
          send(Buffer.alloc(0), holdMs)
        }
        afterError = type === ERROR_RESPONSE
        at = end
      }
      send(pending.subarray(start, at), 0)
      pending = pending.subarray(at)
    })
  })
  return {
    port: proxy.port,
    get held() {
      return held
    },
    close: proxy.close,
  }
}
