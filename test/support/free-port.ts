// A TCP port on 127.0.0.1 that nothing listens on once this resolves: for a server a test starts,
// or as an address where every connect is refused at once.
import { createServer } from 'node:net'

export const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })

/** Where every connect is refused at once: an unreachable reader, say. */
export const refusingAddress = async () => ({ host: '127.0.0.1', port: await freePort() })
