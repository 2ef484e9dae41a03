// What the test proxies share: a listener on 127.0.0.1 that opens a connection to `target` for each
// client, the two sockets tracked until they close, and a close() that cuts every one of them.
import { once } from 'node:events'
import { connect, createServer, type ServerOpts, type Socket } from 'node:net'

export interface TcpProxy {
  port: number
  /** Every socket open now, clients' and upstream ones. */
  sockets: ReadonlySet<Socket>
  close(): Promise<void>
}

/** `pair` wires each client to its upstream: what passes, what is held back, what ends which. */
export async function tcpProxy(
  target: URL,
  pair: (client: Socket, upstream: Socket) => void,
  options: ServerOpts = {},
): Promise<TcpProxy> {
  const sockets = new Set<Socket>()
  const track = (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => s.destroy())
  }
  const server = createServer(options, (client) => {
    const upstream = connect(Number(target.port), target.hostname)
    track(client)
    track(upstream)
    pair(client, upstream)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as { port: number }).port,
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy()
      server.close()
      await once(server, 'close')
    },
  }
}
