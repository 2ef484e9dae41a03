// The control connection Kysely opens to cancel a statement (`new pool.Client(pool.options)`, then
// `select pg_cancel_backend(<pid>)`), for a TenantPgPool, which has no connection settings of its
// own to give. It opens no session: it sends the server's CancelRequest for the connection the
// handle lent (its process id and secret key, on a socket of its own, as libpq's PQcancel does),
// and only for a connection that handle lent and whose holder has not released it. Nothing else is
// run: any other statement is refused.
import { connect } from 'node:net'
import type { PoolClient } from 'pg'

// pg_cancel_backend(pid) or pg_terminate_backend(pid), as Kysely writes them.
const CONTROL = /^\s*select\s+pg_(cancel|terminate)_backend\s*\(\s*(\d+)\s*\)\s*;?\s*$/i
const CANCEL_REQUEST_CODE = 80877102

// pg's Client keeps the backend's key from BackendKeyData; @types/pg declares neither field.
interface Keyed {
  processID?: number
  secretKey?: number
  host?: string
  port?: number
  connection?: { stream?: { destroy(): void } }
}

/**
 * Sends a CancelRequest for `client`'s backend, if `stillHeld()` says so once the socket is open (the
 * holder may have released it meanwhile, and it may serve another tenant now). Resolves once it is
 * sent (or was not); never rejects.
 */
export function sendCancelRequest(client: PoolClient, stillHeld: () => boolean): Promise<boolean> {
  const { processID, secretKey, host = 'localhost', port = 5432 } = client as unknown as Keyed
  if (processID === undefined || secretKey === undefined) return Promise.resolve(false)
  const packet = Buffer.alloc(16)
  packet.writeInt32BE(16, 0)
  packet.writeInt32BE(CANCEL_REQUEST_CODE, 4)
  packet.writeInt32BE(processID, 8)
  packet.writeInt32BE(secretKey, 12)
  return new Promise((resolve) => {
    const socket = host.startsWith('/') ? connect(`${host}/.s.PGSQL.${port}`) : connect(port, host)
    socket.setTimeout(5_000, () => socket.destroy())
    socket.once('connect', () => {
      if (!stillHeld()) {
        socket.end()
        resolve(false)
        return
      }
      socket.end(packet, () => resolve(true))
    })
    socket.once('error', () => resolve(false))
    // The server closes its end once it has read the request.
    socket.once('close', () => resolve(false))
  })
}

/** A pg.Client look-alike that cancels (or ends) statements of the connections in `leased`. */
export function cancelControlClient(leased: ReadonlySet<PoolClient>) {
  return class TenantPoolsControlClient {
    connect(): Promise<void> {
      return Promise.resolve()
    }

    async query(text: unknown): Promise<{ rows: Array<Record<string, boolean>> }> {
      const match = typeof text === 'string' ? CONTROL.exec(text) : null
      if (!match) {
        throw new TypeError(
          "A TenantPgPool's Client only cancels a statement of a connection the pool lent: pg_cancel_backend(pid) or pg_terminate_backend(pid)",
        )
      }
      const [, action, pid] = match as unknown as [string, string, string]
      const target = [...leased].find((c) => (c as unknown as Keyed).processID === Number(pid))
      const column = `pg_${action}_backend`
      if (!target) return { rows: [{ [column]: false }] }
      const held = () => leased.has(target)
      const sent = await sendCancelRequest(target, held)
      // Ending the session: the socket is dropped too (if still lent), and the registry destroys the
      // connection on its release (it is lost).
      if (action === 'terminate' && held()) (target as unknown as Keyed).connection?.stream?.destroy()
      return { rows: [{ [column]: sent }] }
    }

    end(): Promise<void> {
      return Promise.resolve()
    }
  }
}
