// A TCP proxy in front of a plain-text PostgreSQL that holds each client's goodbye (the Terminate
// message) for `holdMs` before passing it on. The server's backend so outlives the client's close by
// that much, and the proxy counts how many backends are open at once: a pool that frees a budget slot
// before its connection is gone at the server shows up as an overlap.
import { tcpProxy } from './tcp-proxy'

// Terminate: type 'X', length 4, no body.
const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4])

export interface SlowGoodbyeProxy {
  port: number
  /** Connections made to the server through the proxy. */
  readonly opened: number
  /** The most connections open to the server at once. */
  readonly peakOpen: number
  close(): Promise<void>
}

export async function slowGoodbyeProxy(target: URL, holdMs: number): Promise<SlowGoodbyeProxy> {
  let opened = 0
  let open = 0
  let peakOpen = 0
  // Half-open allowed: the client's FIN must not close its side here before the server has gone.
  const proxy = await tcpProxy(
    target,
    (client, upstream) => {
      opened++
      peakOpen = Math.max(peakOpen, ++open)
      upstream.once('close', () => {
        open--
        client.destroy()
      })
      client.once('close', () => setTimeout(() => upstream.end(), holdMs))
      client.on('data', (chunk: Buffer) => {
        if (chunk.subarray(-TERMINATE.length).equals(TERMINATE)) {
          client.pause()
          setTimeout(() => upstream.write(chunk), holdMs)
        } else upstream.write(chunk)
      })
      upstream.pipe(client)
    },
    { allowHalfOpen: true },
  )
  return {
    port: proxy.port,
    get opened() {
      return opened
    },
    get peakOpen() {
      return peakOpen
    },
    close: proxy.close,
  }
}
