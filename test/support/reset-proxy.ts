// A TCP proxy in front of a plain-text PostgreSQL that, once armed, answers the next bytes a client
// sends with a reset, as a server whose backend died while the client was frozen does: `'drop'`
// never forwards them (nothing reached a backend), `'after-forward'` forwards them and resets the
// client before any answer gets back (the statement ran; the client learns nothing).
import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'

export type ResetMode = 'drop' | 'after-forward'

export interface ResetProxy {
  port: number
  /** The target's connection string, through this proxy. */
  url: string
  /** The next client write on any connection open now is met by a reset, as `mode` says. */
  arm(mode: ResetMode): void
  /** Resets done so far. */
  readonly resets: number
  /** Cuts every client connection now: with a reset, or with a clean end (an EOF, no goodbye). */
  cut(how: 'reset' | 'eof'): void
  /** Chunks clients have sent so far: a round trip's worth of messages arrives as one. */
  readonly clientWrites: number
  close(): Promise<void>
}

export async function resetProxy(target: URL): Promise<ResetProxy> {
  const sockets = new Set<Socket>()
  const armed = new Map<Socket, ResetMode>()
  let resets = 0
  let clientWrites = 0
  const track = (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => s.destroy())
  }
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname)
    track(client)
    track(upstream)
    upstream.once('close', () => client.destroy())
    client.once('close', () => upstream.destroy())
    client.on('data', (chunk: Buffer) => {
      clientWrites++
      const mode = armed.get(client)
      if (mode === undefined) {
        upstream.write(chunk)
        return
      }
      armed.delete(client)
      resets++
      upstream.unpipe(client)
      if (mode === 'after-forward') {
        // The answer is held back: the client is reset once the server has had the bytes.
        upstream.write(chunk, () => setTimeout(() => client.resetAndDestroy(), 50))
      } else {
        client.resetAndDestroy()
        upstream.destroy()
      }
    })
    upstream.pipe(client)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  const url = new URL(target)
  url.hostname = '127.0.0.1'
  url.port = String(port)
  return {
    port,
    url: url.toString(),
    arm: (mode) => {
      for (const s of sockets)
        if (s.remotePort !== undefined && s.localPort === (server.address() as { port: number }).port)
          armed.set(s, mode)
    },
    cut: (how) => {
      for (const s of sockets) {
        if (s.localPort !== (server.address() as { port: number }).port) continue
        if (how === 'reset') s.resetAndDestroy()
        else s.end()
      }
    },
    get resets() {
      return resets
    },
    get clientWrites() {
      return clientWrites
    },
    close: async () => {
      for (const s of sockets) s.destroy()
      server.close()
      await once(server, 'close')
    },
  }
}
