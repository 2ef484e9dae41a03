// A stand-in for a Lambda execution environment frozen by test/support/netns-freeze.ts: it runs in
// its own network namespace, holds warm pools and serves one request per stdin line. Requests come
// on stdin, not the network, so the one written at the thaw reaches it although the link dropped
// everything while it was frozen.
// Argument: JSON { connectionString, prefix, options } (options: more TenantPoolsOptions).
// Request: {"id":n,"tenant":"t","via":"read"|"write"|"withClient"|"transaction"|"pgPool"|"slowWrite"}.
// Every write inserts its own `id` into `calls`, so the test can count how often each one ran.
// Reply: {"id":n,"ok":true,"pid":…} or {"id":n,"ok":false,"code","mayHaveRun","cause","message"}, each
// with `tookMs`, measured here so the pipe and the parent's event loop are not counted.
import { createInterface } from 'node:readline'
import type { ClientBase } from 'pg'
import { TenantPools, type TenantPoolsOptions } from '../../lib'

export type Via = 'read' | 'write' | 'withClient' | 'transaction' | 'pgPool' | 'slowWrite'

export interface WorkerRequest {
  id: number
  tenant: string
  via: Via
  /** slowWrite: seconds the INSERT sleeps before it writes. */
  sleepS?: number
}

export interface WorkerReply {
  id?: number
  ok?: boolean
  pid?: number
  code?: string
  mayHaveRun?: boolean
  cause?: string
  message?: string
  ready?: boolean
  crashed?: boolean
  stats?: Record<string, number>
  /** From the request's start (its line read, after any thaw) to its answer, in this process. */
  tookMs?: number
}

const { connectionString, prefix, options } = JSON.parse(process.argv[2] as string) as {
  connectionString: string
  prefix: string
  options?: TenantPoolsOptions
}
const pools = new TenantPools({
  connectionString,
  applicationNamePrefix: prefix,
  maxPerPool: 5,
  budget: 10,
  logger: { debug() {}, info() {}, warn() {}, error() {} },
  ...options,
})

const reply = (message: WorkerReply) => process.stdout.write(`${JSON.stringify(message)}\n`)

const INSERT = 'INSERT INTO calls (id) VALUES ($1) RETURNING pg_backend_pid() AS pid'
// The row is written after the sleep: a freeze during the sleep leaves the outcome to the server.
const SLOW_INSERT = 'INSERT INTO calls (id) SELECT $1 FROM pg_sleep($2) RETURNING pg_backend_pid() AS pid'

type PidRows = { rows: { pid: number }[] }

const insertOn = (client: ClientBase, id: number) => client.query<{ pid: number }>(INSERT, [id])

function run(r: WorkerRequest): Promise<PidRows> {
  switch (r.via) {
    case 'read':
      return pools.query<{ pid: number }>(r.tenant, 'SELECT pg_backend_pid() AS pid FROM calls LIMIT 1')
    case 'write':
      return pools.query<{ pid: number }>(r.tenant, INSERT, [r.id])
    case 'withClient':
      return pools.withClient(r.tenant, (client) => insertOn(client, r.id))
    case 'transaction':
      return pools.transaction(r.tenant, (client) => insertOn(client, r.id))
    case 'pgPool':
      return pools.forTenant(r.tenant).asPgPool().query<{ pid: number }>(INSERT, [r.id])
    case 'slowWrite':
      return pools.query<{ pid: number }>(r.tenant, SLOW_INSERT, [r.id, r.sleepS ?? 1])
  }
}

async function serve(r: WorkerRequest): Promise<void> {
  // Before invocationStarted: what the library does at a thaw is part of the request's time.
  const started = performance.now()
  const took = () => performance.now() - started
  // As a handler's middleware does: a freeze may lie between this request and the last.
  pools.invocationStarted()
  try {
    const { rows } = await run(r)
    reply({ id: r.id, ok: true, pid: rows[0]?.pid, tookMs: took() })
  } catch (err) {
    const e = err as {
      code?: string
      message?: string
      mayHaveRun?: boolean
      cause?: { code?: string; message?: string }
    }
    reply({
      id: r.id,
      ok: false,
      code: e.code,
      mayHaveRun: e.mayHaveRun,
      // Why a connect or a statement failed: its SQLSTATE or socket code.
      cause: e.cause?.code ?? e.cause?.message,
      message: e.message,
      tookMs: took(),
    })
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  void serve(JSON.parse(line) as WorkerRequest)
})

process.on('uncaughtException', (err) => {
  reply({ crashed: true, code: (err as { code?: string }).code, message: err.message })
  process.exit(1)
})

process.stdin.on('end', () => {
  void pools.end().then(() => reply({ stats: pools.stats().counters as unknown as Record<string, number> }))
})

reply({ ready: true })
