// Issue 27: a freeze as Lambda makes it. The environment (a worker process holding warm pools) runs in
// a network namespace whose link drops every packet both ways while it is frozen, so what the server
// sends meanwhile (a terminated backend's FATAL and FIN, an answer) is lost, not kept for the thaw.
// freeze-thaw.test.ts only SIGSTOPs the process, and its kernel keeps what comes. The server is one of
// this file's own, listening on the host's end of each link (the shared one listens on 127.0.0.1).
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Client } from 'pg'
import { type ControlledServer, controlledServer } from '../support/controlled-pg'
import { eventually, onServer, sleep, uniquePrefix, uniqueTenant } from '../support/db'
import {
  createNetnsEnvironment,
  type NetnsEnvironment,
  netnsUnavailable,
  sweepStaleNamespaces,
} from '../support/netns-freeze'
import type { Via, WorkerReply, WorkerRequest } from '../support/netns-freeze-worker'

const unavailable = netnsUnavailable()
const KINDS: Via[] = ['read', 'write', 'withClient', 'transaction', 'pgPool']

let server: ControlledServer
let hbaDir: string
let admin: Client | undefined
let nextId = 0
const summary: string[] = []

/** One connection kept open, so a terminate lands within a 0.1 s freeze. */
async function adminClient(): Promise<Client> {
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

/** The server's backends of this prefix, over the host's end of the link. */
async function backendsOf(prefix: string): Promise<number> {
  const { rows } = await (await adminClient()).query<{ n: string }>(
    'SELECT count(*) AS n FROM pg_stat_activity WHERE application_name LIKE $1',
    [`${prefix}:%`],
  )
  return Number(rows[0]?.n)
}

/** Terminates the prefix's backends and waits (up to 2 s each) until they have exited. */
async function terminate(prefix: string, { activeOnly = false } = {}): Promise<number> {
  const { rows } = await (await adminClient()).query(
    `SELECT pg_terminate_backend(pid, 2000) FROM pg_stat_activity
      WHERE application_name LIKE $1 AND (NOT $2 OR state = 'active')`,
    [`${prefix}:%`, activeOnly],
  )
  return rows.length
}

interface Environment {
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
async function startEnvironment(options: object = {}): Promise<Environment> {
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
    'test/support/netns-freeze-worker.ts',
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

interface Call {
  request: WorkerRequest
  reply: WorkerReply
}

/** Sends `requests` (one of each kind, say) and awaits the replies, all at once or one by one. */
async function calls(e: Environment, requests: WorkerRequest[], together: boolean): Promise<Call[]> {
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

const oneOfEach = (tenant: string): WorkerRequest[] => KINDS.map((via) => ({ id: ++nextId, tenant, via }))

/**
 * Warms the environment (five writes at once leave five idle connections), freezes it, runs
 * `during` while frozen, keeps it frozen `freezeMs` in all, then thaws it with one call of each kind
 * waiting: all written into its stdin before the thaw (`together`), or the first one only, the others
 * each after the last reply. Returns every call, the warm ones too.
 */
async function freezeCycle(
  e: Environment,
  freezeMs: number,
  during: () => Promise<void>,
  together: boolean,
): Promise<Call[]> {
  const warm = await calls(
    e,
    Array.from({ length: 5 }, () => ({ id: ++nextId, tenant: e.tenant, via: 'write' as const })),
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

/** Per id of the tenant's `calls`, how many rows: a statement that ran twice shows as 2. */
async function rowsPerId(tenant: string): Promise<Map<number, number>> {
  return onServer(server.url, async (c) => {
    const { rows } = await c.query<{ id: number; n: string }>(
      `SELECT id, count(*) AS n FROM tenant_${tenant}.calls GROUP BY id`,
    )
    return new Map(rows.map((r) => [r.id, Number(r.n)]))
  })
}

const writes = (all: Call[]) => all.filter((c) => c.request.via !== 'read')

/**
 * What the database says against what the callers were told: acknowledged writes there once, failed
 * writes not flagged `mayHaveRun` absent, no write there twice.
 */
async function untruths(tenant: string, all: Call[]): Promise<string[]> {
  const rows = await rowsPerId(tenant)
  const wrong: string[] = []
  for (const { request, reply } of writes(all)) {
    const n = rows.get(request.id) ?? 0
    if (n > 1) wrong.push(`${request.via} ${request.id} ran ${n} times`)
    if (reply.ok && n !== 1) wrong.push(`${request.via} ${request.id} acknowledged, ${n} rows`)
    if (!reply.ok && reply.mayHaveRun !== true && n !== 0)
      wrong.push(`${request.via} ${request.id} failed (${reply.code}, mayHaveRun not set), yet written`)
  }
  return wrong
}

const failureCodes = (all: Call[]) =>
  all
    .filter((c) => !c.reply.ok)
    .map((c) => `${c.request.via}:${c.reply.code ?? '?'}${c.reply.cause ? `/${c.reply.cause}` : ''}`)

function report(name: string, all: Call[], extra = ''): void {
  const failed = failureCodes(all)
  summary.push(
    `${name}: ${all.length} calls, ${failed.length} failed${failed.length ? ` [${failed.join(', ')}]` : ''}${extra}`,
  )
}

const suiteName = unavailable
  ? `Behaviour: a freeze loses what the server sends (SKIPPED: ${unavailable})`
  : 'Behaviour: a freeze loses what the server sends (netns link dropping both ways)'
const describeWhere = unavailable ? describe.skip : describe

describeWhere(suiteName, () => {
  beforeAll(async () => {
    sweepStaleNamespaces()
    // Trust nothing new: the same password, now also from the namespaces' addresses.
    hbaDir = mkdtempSync(join(tmpdir(), 'tenant-pools-netns-hba-'))
    chmodSync(hbaDir, 0o755)
    const hba = join(hbaDir, 'pg_hba.conf')
    writeFileSync(
      hba,
      'local all all password\nhost all all 127.0.0.1/32 password\nhost all all 10.231.0.0/16 password\n',
      { mode: 0o644 },
    )
    server = await controlledServer(['listen_addresses=*', `hba_file=${hba}`])
  }, 60_000)

  afterAll(async () => {
    await admin?.end().catch(() => {})
    await server?.quit()
    if (hbaDir) rmSync(hbaDir, { recursive: true, force: true })
    process.stdout.write(`\nfreeze-netns, per case:\n  ${summary.join('\n  ')}\n\n`)
  }, 30_000)

  const terminated = (e: Environment) => async () => {
    await terminate(e.prefix)
    // pg_terminate_backend(pid, timeout) waited for each to exit: none is left.
    expect(await backendsOf(e.prefix)).toBe(0)
  }

  it.each<[string, number, number]>([
    ['0.1 s', 100, 2],
    ['0.5 s', 500, 2],
    ['2.5 s', 2_500, 2],
    ['30 s', 30_000, 1],
  ])(
    'backends terminated during a %s freeze: 0 caller-visible failures, nothing run twice or lost',
    async (label, freezeMs, cycles) => {
      // Prepare
      const e = await startEnvironment()
      const all: Call[] = []
      try {
        // Act: the first cycle thaws with one call of each kind waiting, the second one by one.
        for (let cycle = 0; cycle < cycles; cycle++) {
          all.push(...(await freezeCycle(e, freezeMs, terminated(e), cycle % 2 === 0)))
        }
      } finally {
        await e.end()
      }
      // Assess
      report(`terminated, ${label} freeze`, all)
      expect(await untruths(e.tenant, all)).toEqual([])
      expect(failureCodes(all)).toEqual([])
      expect(e.stderr()).toBe('')
    },
    110_000,
  )

  it("the server's idle_session_timeout ends the backends during a freeze: 0 caller-visible failures", async () => {
    // Prepare: the library's startup setting, not the role's, is the one the session runs with.
    const e = await startEnvironment({ idleSessionTimeoutMs: 300 })
    const all: Call[] = []
    try {
      // Act
      for (const together of [true, false]) {
        const during = async () => {
          expect(await eventually(async () => (await backendsOf(e.prefix)) === 0, 5_000)).toBe(true)
        }
        all.push(...(await freezeCycle(e, 1_500, during, together)))
      }
    } finally {
      await e.end()
    }
    // Assess
    report('idle_session_timeout (0.3 s) during a 1.5 s freeze', all)
    expect(await untruths(e.tenant, all)).toEqual([])
    expect(failureCodes(all)).toEqual([])
  }, 60_000)

  it('the server restarted during a freeze: 0 caller-visible failures', async () => {
    // Prepare
    const e = await startEnvironment()
    const all: Call[] = []
    try {
      // Act: the old connections' FINs are lost; the first write after the thaw meets an RST.
      for (const together of [true, false]) {
        const during = async () => {
          await admin?.end().catch(() => {})
          admin = undefined
          await server.stop()
          await server.start()
        }
        all.push(...(await freezeCycle(e, 0, during, together)))
      }
    } finally {
      await e.end()
    }
    // Assess
    report('server restarted during a freeze', all)
    expect(await untruths(e.tenant, all)).toEqual([])
    expect(failureCodes(all)).toEqual([])
  }, 90_000)

  it.each<[string, number, boolean]>([
    ['0.5 s freeze, thawed before the statement ends', 500, false],
    ['2.5 s freeze, the answer sent (and lost) while frozen', 2_500, false],
    ['2.5 s freeze, its backend terminated mid-statement', 2_500, true],
  ])(
    'a write in flight at the freeze (%s): its outcome is told truthfully',
    async (label, freezeMs, kill) => {
      // Prepare: warm, so the write goes out on a connection at once.
      const e = await startEnvironment()
      const all: Call[] = []
      try {
        all.push(...(await calls(e, oneOfEach(e.tenant), true)))
        // Act: a 1 s write, frozen once the server runs it.
        const slow: WorkerRequest = { id: ++nextId, tenant: e.tenant, via: 'slowWrite', sleepS: 1 }
        e.send(slow)
        const running = async () => {
          const { rows } = await (await adminClient()).query(
            `SELECT 1 FROM pg_stat_activity WHERE application_name LIKE $1 AND query LIKE '%pg_sleep%'`,
            [`${e.prefix}:%`],
          )
          return rows.length > 0
        }
        expect(await eventually(running, 5_000)).toBe(true)
        const pid = e.child.pid as number
        e.env.freeze(pid)
        if (kill) await terminate(e.prefix, { activeOnly: true })
        await sleep(freezeMs)
        e.env.thaw(pid)
        all.push({ request: slow, reply: await e.reply(slow.id) })
        // And the environment serves on.
        all.push(...(await calls(e, oneOfEach(e.tenant), true)))
      } finally {
        await e.end()
      }
      // Assess: only truthfulness; a failure is allowed, not a lie.
      const slowReply = all.find((c) => c.request.via === 'slowWrite')?.reply
      const written = (await rowsPerId(e.tenant)).get(
        all.find((c) => c.request.via === 'slowWrite')?.request.id ?? -1,
      )
      report(
        `in flight, ${label}`,
        all,
        `; the write: ${slowReply?.ok ? 'ok' : `${slowReply?.code} mayHaveRun=${slowReply?.mayHaveRun}`}, ${written ?? 0} row`,
      )
      expect(await untruths(e.tenant, all)).toEqual([])
    },
    60_000,
  )
})
