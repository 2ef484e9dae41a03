// A TCP proxy in front of a plain-text PostgreSQL that, once armed, answers the next bytes a client
// sends with a reset, as a server whose backend died while the client was frozen does: `'drop'`
// never forwards them (nothing reached a backend), `'after-forward'` forwards them and resets the
// client before any answer gets back (the statement ran; the client learns nothing).
import type { Socket } from 'node:net'
import { tcpProxy } from './tcp-proxy'

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
  const armed = new Map<Socket, ResetMode>()
  const clients = new Set<Socket>()
  let resets = 0
  let clientWrites = 0
  const proxy = await tcpProxy(target, (client, upstream) => {
    clients.add(client)
    client.once('close', () => clients.delete(client))
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
  const port = proxy.port
  const url = new URL(target)
  url.hostname = '127.0.0.1'
  url.port = String(port)
  return {
    port,
    url: url.toString(),
    arm: (mode) => {
      for (const client of clients) if (!client.destroyed) armed.set(client, mode)
    },
    cut: (how) => {
      for (const client of clients) {
        if (how === 'reset') client.resetAndDestroy()
        else client.end()
      }
    },
    get resets() {
      return resets
    },
    get clientWrites() {
      return clientWrites
    },
    close: proxy.close,
  }
}
