// A TCP proxy in front of a plain-text PostgreSQL that holds each client's goodbye (the Terminate
// message) for `holdMs` before passing it on. The server's backend so outlives the client's close by
// that much, and the proxy counts how many backends are open at once: a pool that frees a budget slot
// before its connection is gone at the server shows up as an overlap.
import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'

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
  const sockets = new Set<Socket>()
  const track = (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => s.destroy())
  }
  // Half-open allowed: the client's FIN must not close its side here before the server has gone.
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connect(Number(target.port), target.hostname)
    track(client)
    track(upstream)
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
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as { port: number }).port,
    get opened() {
      return opened
    },
    get peakOpen() {
      return peakOpen
    },
    close: async () => {
      for (const s of sockets) s.destroy()
      server.close()
      await once(server, 'close')
    },
  }
}
