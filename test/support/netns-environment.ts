// The glue between a PostgreSQL of one's own and environments frozen by netns-freeze.ts, shared by
// test/registry/calls.freeze-netns.test.ts and bench/chaos.ts (the `faithful` scenario). The server
// listens on every address, since each environment reaches it over its own link's host end, and its
// hba file admits the namespaces' subnet with the same password as 127.0.0.1.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Client } from 'pg'
import { type ControlledServer, controlledServer } from './controlled-pg'
import { onServer, sleep, uniquePrefix, uniqueTenant } from './db'
import { createNetnsEnvironment, type NetnsEnvironment, sweepStaleNamespaces } from './netns-freeze'
import type { Via, WorkerReply, WorkerRequest } from './netns-freeze-worker'

export const KINDS: Via[] = ['read', 'write', 'withClient', 'transaction', 'pgPool']

let lastId = 0
/** Request ids unique within this process: each write inserts its id, counted afterwards. */
export const nextId = (): number => ++lastId

export interface NetnsServer {
  server: ControlledServer
  /** One connection kept open, so a terminate lands within a 0.1 s freeze. */
  adminClient(): Promise<Client>
  /** Ends the admin connection (before a restart); the next adminClient() opens another. */
  dropAdmin(): Promise<void>
  /** The server's backends of this prefix, over the host's end of the link. */
  backendsOf(prefix: string): Promise<number>
  /** Terminates the prefix's backends and waits (up to 2 s each) until they have exited. */
  terminate(prefix: string, options?: { activeOnly?: boolean }): Promise<number>
  quit(): Promise<void>
}

/** A controlled server the namespaces reach. Sweeps namespaces a dead run left behind first. */
export async function netnsServer(): Promise<NetnsServer> {
  sweepStaleNamespaces()
  // Trust nothing new: the same password, now also from the namespaces' addresses.
  const hbaDir = mkdtempSync(join(tmpdir(), 'tenant-pools-netns-hba-'))
  chmodSync(hbaDir, 0o755)
  const hba = join(hbaDir, 'pg_hba.conf')
  writeFileSync(
    hba,
    'local all all password\nhost all all 127.0.0.1/32 password\nhost all all 10.231.0.0/16 password\n',
    { mode: 0o644 },
  )
  const server = await controlledServer(['listen_addresses=*', `hba_file=${hba}`])
  let admin: Client | undefined
  const adminClient = async (): Promise<Client> => {
    if (admin) return admin
    const client = new Client({ connectionString: server.url, application_name: 'netns-freeze-admin' })
    // A restart ends it; the next call opens another.
    client.on('error', () => {
      if (admin === client) admin = undefined
    })
    await client.connect()
    admin = client
    return client
  }
  const dropAdmin = async () => {
    const client = admin
    admin = undefined
    await client?.end().catch(() => {})
  }
  return {
    server,
    adminClient,
    dropAdmin,
    async backendsOf(prefix) {
      const { rows } = await (await adminClient()).query<{ n: string }>(
        'SELECT count(*) AS n FROM pg_stat_activity WHERE application_name LIKE $1',
        [`${prefix}:%`],
      )
      return Number(rows[0]?.n)
    },
    async terminate(prefix, { activeOnly = false } = {}) {
      const { rows } = await (await adminClient()).query(
        // Waits for each backend to exit: up to 10 s, as a loaded machine (both cores busy) was seen
        // to leave one running past 2 s.
        `SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity
          WHERE application_name LIKE $1 AND (NOT $2 OR state = 'active')`,
        [`${prefix}:%`, activeOnly],
      )
      return rows.length
    },
    async quit() {
      await dropAdmin()
      await server.quit()
      rmSync(hbaDir, { recursive: true, force: true })
    },
  }
}

export interface Environment {
  env: NetnsEnvironment
  child: ChildProcessWithoutNullStreams
  prefix: string
  tenant: string
  send(r: WorkerRequest): void
  reply(id: number): Promise<WorkerReply>
  end(): Promise<Record<string, number> | undefined>
  stderr(): string
}

/** A namespace, and a worker in it whose pools reach the server over the namespace's link. */
export async function startEnvironment(server: ControlledServer, options: object = {}): Promise<Environment> {
  const env = createNetnsEnvironment()
  const prefix = uniquePrefix()
  const tenant = uniqueTenant('nz')
  await onServer(server.url, async (c) => {
    await c.query(`CREATE SCHEMA tenant_${tenant}`)
    await c.query(`CREATE TABLE tenant_${tenant}.whoami (tenant text NOT NULL)`)
    await c.query(`INSERT INTO tenant_${tenant}.whoami VALUES ($1)`, [tenant])
    await c.query(`CREATE TABLE tenant_${tenant}.calls (id int NOT NULL)`)
    await c.query(`INSERT INTO tenant_${tenant}.calls VALUES (0)`)
  })
  const url = new URL(server.url)
  url.hostname = env.hostAddress
  const config = JSON.stringify({ connectionString: url.toString(), prefix, options })
  // `ip netns exec` execs node in place: the child's pid is the worker's, for SIGSTOP.
  const [cmd, ...args] = env.exec([
    process.execPath,
    '--import',
    'tsx',
    join(__dirname, 'netns-freeze-worker.ts'),
    config,
  ])
  const child = spawn(cmd as string, args, { stdio: 'pipe' })
  const replies = new Map<string, WorkerReply>()
  const waiting = new Map<string, (r: WorkerReply) => void>()
  const keyOf = (r: WorkerReply) => (r.stats ? 'stats' : r.ready ? 'ready' : `id:${r.id}`)
  createInterface({ input: child.stdout }).on('line', (line) => {
    const r = JSON.parse(line) as WorkerReply
    replies.set(keyOf(r), r)
    waiting.get(keyOf(r))?.(r)
  })
  let stderr = ''
  child.stderr.on('data', (d) => {
    stderr += d
  })
  const next = (key: string) =>
    new Promise<WorkerReply>((resolve) => {
      const done = replies.get(key)
      if (done) resolve(done)
      else waiting.set(key, resolve)
    })
  await next('ready')
  return {
    env,
    child,
    prefix,
    tenant,
    send: (r) => child.stdin.write(`${JSON.stringify(r)}\n`),
    reply: (id) => next(`id:${id}`),
    async end() {
      if (env.frozen) env.thaw(child.pid as number)
      child.stdin.end()
      // Bounded: a worker that never answers is killed all the same. The timer is cleared, or it
      // would hold jest open after the run.
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), 10_000)
      })
      const stats = await Promise.race([next('stats'), late])
      clearTimeout(timer)
      env.remove([child.pid as number])
      return stats?.stats
    },
    stderr: () => stderr,
  }
}

export interface Call {
  request: WorkerRequest
  reply: WorkerReply
}

/** Sends `requests` (one of each kind, say) and awaits the replies, all at once or one by one. */
export async function calls(e: Environment, requests: WorkerRequest[], together: boolean): Promise<Call[]> {
  const out: Call[] = []
  if (together) {
    for (const r of requests) e.send(r)
    for (const r of requests) out.push({ request: r, reply: await e.reply(r.id) })
  } else {
    for (const r of requests) {
      e.send(r)
      out.push({ request: r, reply: await e.reply(r.id) })
    }
  }
  return out
}

export const oneOfEach = (tenant: string): WorkerRequest[] =>
  KINDS.map((via) => ({ id: nextId(), tenant, via }))

/**
 * Warms the environment (five writes at once leave five idle connections), freezes it, runs
 * `during` while frozen, keeps it frozen `freezeMs` in all, then thaws it with one call of each kind
 * waiting: all written into its stdin before the thaw (`together`), or the first one only, the others
 * each after the last reply. Returns every call, the warm ones too.
 */
export async function freezeCycle(
  e: Environment,
  freezeMs: number,
  during: () => Promise<void>,
  together: boolean,
): Promise<Call[]> {
  const warm = await calls(
    e,
    Array.from({ length: 5 }, () => ({ id: nextId(), tenant: e.tenant, via: 'write' as const })),
    true,
  )
  const pid = e.child.pid as number
  const frozenAt = Date.now()
  e.env.freeze(pid)
  await during()
  await sleep(frozenAt + freezeMs - Date.now())
  const after = oneOfEach(e.tenant)
  const [first, ...rest] = after as [WorkerRequest, ...WorkerRequest[]]
  // Written while frozen: the thawed process reads it at once, as an invocation arriving at the thaw.
  e.send(first)
  if (together) for (const r of rest) e.send(r)
  e.env.thaw(pid)
  const thawed: Call[] = [{ request: first, reply: await e.reply(first.id) }]
  if (together) for (const r of rest) thawed.push({ request: r, reply: await e.reply(r.id) })
  else thawed.push(...(await calls(e, rest, false)))
  return [...warm, ...thawed]
}

/**
 * The failed calls in full (request, reply with message and timing): what an assertion that none
 * failed prints when one did, since such a failure is rare and may not come back.
 */
export const failures = (all: Call[]) =>
  all.filter((c) => !c.reply.ok).map((c) => ({ ...c.request, ...c.reply }))

/** The failed calls, as `via:code/cause`. */
export const failureCodes = (all: Call[]): string[] =>
  all
    .filter((c) => !c.reply.ok)
    .map((c) => `${c.request.via}:${c.reply.code ?? '?'}${c.reply.cause ? `/${c.reply.cause}` : ''}`)
