import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import {
  countBackends,
  createTenants,
  databaseUrl,
  eventually,
  sleep,
  terminateBackends,
  uniquePrefix,
  uniqueTenant,
  withAdmin,
} from '../support/db'

/** State T in /proc/<pid>/stat: stopped by a signal. */
const isStopped = (pid: number): boolean =>
  readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('T') ?? false

type Reply = {
  id?: number
  ok?: boolean
  code?: string
  armed?: number
  freezing?: number
  crashed?: boolean
  stats?: object
  prewarmed?: string
}

const keyOf = (r: Reply): string => {
  if (r.armed !== undefined) return `armed:${r.armed}`
  if (r.freezing !== undefined) return `freezing:${r.freezing}`
  if (r.prewarmed !== undefined) return 'prewarmed'
  return r.stats ? 'stats' : `id:${r.id}`
}

/** Runs the worker and lets the test await its replies by id. */
function startWorker(
  prefix: string,
  validateAfterIdleMs: number,
  via: Via,
  prewarm?: { idleSessionTimeoutMs: number },
) {
  const child: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'test/support/freeze-worker.ts',
      databaseUrl(),
      prefix,
      String(validateAfterIdleMs),
      via,
      ...(prewarm ? ['prewarm', String(prewarm.idleSessionTimeoutMs)] : []),
    ],
    { stdio: 'pipe' },
  )
  const replies: Reply[] = []
  const waiting = new Map<string, (r: Reply) => void>()
  createInterface({ input: child.stdout }).on('line', (line) => {
    const r = JSON.parse(line) as Reply
    replies.push(r)
    waiting.get(keyOf(r))?.(r)
  })
  let stderr = ''
  child.stderr.on('data', (d) => {
    stderr += d
  })
  const next = (key: string) =>
    new Promise<Reply>((resolve) => {
      const done = replies.find((r) => keyOf(r) === key)
      if (done) resolve(done)
      else waiting.set(key, resolve)
    })
  const send = (message: object) => child.stdin.write(`${JSON.stringify(message)}\n`)
  return { child, replies, next, send, stderr: () => stderr }
}

/**
 * `timer`: a timer due at the thaw uses the pool, and a request queued during the freeze follows.
 * `request`: the request is read just before the freeze takes hold, and served after the thaw from
 * the same poll phase, which holds only it: the FATALs are read no earlier than the next one.
 */
type Race = 'timer' | 'request'
/** How the worker sends its statements: the registry's query(), or a pg.Pool handle (asPgPool). */
type Via = 'registry' | 'pgPool'

async function runCycles(
  cycles: number,
  validateAfterIdleMs: number,
  race: Race = 'timer',
  via: Via = 'registry',
) {
  // Prepare
  const tenants = [uniqueTenant('fz1'), uniqueTenant('fz2')]
  await createTenants(tenants)
  await withAdmin(async (admin) => {
    for (const t of tenants) await admin.query(`CREATE TABLE tenant_${t}.calls (id int NOT NULL)`)
  })
  const prefix = uniquePrefix()
  const worker = startWorker(prefix, validateAfterIdleMs, via)
  let id = 0
  const failures: Reply[] = []
  const check = async (r: Promise<Reply>) => {
    const reply = await r
    if (!reply.ok) failures.push(reply)
  }

  try {
    for (let cycle = 0; cycle < cycles; cycle++) {
      const tenant = tenants[cycle % 2] as string
      // Warm: two overlapping requests leave two idle connections in the tenant's pool.
      const warm = [++id, ++id]
      for (const w of warm) worker.send({ id: w, tenant })
      await Promise.all(warm.map((w) => check(worker.next(`id:${w}`))))
      if (race === 'request') {
        const racing = ++id
        worker.send({ id: racing, tenant, freezeFirst: true })
        await worker.next(`freezing:${racing}`)
        expect(await eventually(() => isStopped(worker.child.pid as number), 10_000)).toBe(true)
        await terminateBackends(prefix)
        expect(await eventually(async () => (await countBackends(prefix)) === 0, 10_000)).toBe(true)
        process.kill(worker.child.pid as number, 'SIGCONT')
        await check(worker.next(`id:${racing}`))
        continue
      }
      // A timer that will be due when the process wakes up, and that then uses the pool.
      const timed = ++id
      worker.send({ arm: timed, tenant, delayMs: 30 })
      await worker.next(`armed:${timed}`)

      // Act: it froze itself right after arming; kill its backends, queue the next request, thaw
      expect(await eventually(() => isStopped(worker.child.pid as number), 10_000)).toBe(true)
      if (cycle % 2 === 0) await terminateBackends(prefix)
      // Odd cycles: the 150 ms idle_session_timeout ends them while the process is stopped.
      expect(await eventually(async () => (await countBackends(prefix)) === 0, 10_000)).toBe(true)
      await sleep(40)
      const queued = ++id
      worker.send({ id: queued, tenant })
      await sleep(5)
      process.kill(worker.child.pid as number, 'SIGCONT')
      await Promise.all([check(worker.next(`id:${timed}`)), check(worker.next(`id:${queued}`))])
    }
  } finally {
    worker.child.stdin.end()
  }
  const stats = (await worker.next('stats')).stats as Record<string, number>
  const counts = await withAdmin(async (admin) => {
    const all = await Promise.all(
      tenants.map((t) =>
        admin.query<{ id: number; n: string }>(`SELECT id, count(*) AS n FROM tenant_${t}.calls GROUP BY id`),
      ),
    )
    return all.flatMap((r) => r.rows)
  })
  return {
    failures,
    stats,
    counts,
    sent: id,
    stderr: worker.stderr(),
    crashed: worker.replies.filter((r) => r.crashed),
  }
}

describe('Behaviour: freeze and thaw', () => {
  // Every row has all five values: jest takes a parameter a row lacks for a `done` callback.
  it.each<[string, number, number, Race, Via]>([
    [
      'a pending FATAL is read before hand-out (connections idle < validateAfterIdleMs)',
      50,
      60_000,
      'timer',
      'registry',
    ],
    ['connections idle longer are pinged, and replaced when dead', 50, 0, 'timer', 'registry'],
    [
      'a request read at the moment of the freeze waits a full poll phase for the FATALs',
      30,
      60_000,
      'request',
      'registry',
    ],
    [
      'the same through a pg.Pool handle (asPgPool), as Kysely and Drizzle use it',
      30,
      60_000,
      'timer',
      'pgPool',
    ],
  ])(
    '%s: 0 caller-visible failures, no statement run twice',
    async (_label, cycles, validateAfterIdleMs, race, via) => {
      const { failures, stats, counts, sent, stderr, crashed } = await runCycles(
        cycles,
        validateAfterIdleMs,
        race,
        via,
      )

      expect(crashed).toEqual([])
      expect(failures).toEqual([])
      // Every request ran exactly once.
      expect(counts).toHaveLength(sent)
      expect(counts.filter((c) => c.n !== '1')).toEqual([])
      // The thaws really met dead connections (two per cycle), and some were caught only at hand-out.
      expect(stats.connectionsLost).toBeGreaterThanOrEqual(cycles)
      expect(stats.serverKills).toBeGreaterThanOrEqual(cycles)
      expect(stats.connectionsReplaced).toBeGreaterThan(0)
      expect(stderr).toBe('')
    },
    180_000,
  )
})

describe('Behaviour: freeze and thaw of a prewarmed connection', () => {
  // The environment prewarms at init, is frozen before its first request, and its backend ends
  // meanwhile: terminated, or by the server's idle_session_timeout (1 s here: longer than the time
  // from the prewarm to the freeze, far shorter than the freeze).
  it.each<[string, 'terminated' | 'idle_session_timeout']>([
    ['its backend terminated during the freeze', 'terminated'],
    ['its backend ended by idle_session_timeout during the freeze', 'idle_session_timeout'],
  ])(
    '%s: the first request succeeds, and runs once',
    async (_label, end) => {
      // Prepare
      const tenant = uniqueTenant('fzp')
      await createTenants([tenant])
      await withAdmin((admin) => admin.query(`CREATE TABLE tenant_${tenant}.calls (id int NOT NULL)`))
      const prefix = uniquePrefix()
      const worker = startWorker(prefix, 60_000, 'registry', { idleSessionTimeoutMs: 1_000 })
      let reply: Reply
      try {
        expect((await worker.next('prewarmed')).prewarmed).toBe('opened')
        expect(await countBackends(prefix)).toBe(1)

        // Act: the first request is read as the freeze takes hold; the backend ends; thaw
        worker.send({ id: 1, tenant, freezeFirst: true })
        await worker.next('freezing:1')
        expect(await eventually(() => isStopped(worker.child.pid as number), 10_000)).toBe(true)
        if (end === 'terminated') await terminateBackends(prefix)
        expect(await eventually(async () => (await countBackends(prefix)) === 0, 10_000)).toBe(true)
        process.kill(worker.child.pid as number, 'SIGCONT')
        reply = await worker.next('id:1')
      } finally {
        worker.child.stdin.end()
      }
      const stats = (await worker.next('stats')).stats as Record<string, number>

      // Assess: served, once, on a fresh connection; the dead one counted, never thrown
      expect(reply).toMatchObject({ id: 1, ok: true })
      const rows = await withAdmin(
        async (admin) => (await admin.query(`SELECT id FROM tenant_${tenant}.calls`)).rows,
      )
      expect(rows).toEqual([{ id: 1 }])
      expect(stats.connectionsOpened).toBe(2)
      // Caught by the checkout: handed out after the thaw, found dead before the statement went.
      expect(stats.connectionsReplaced).toBe(1)
      expect(stats.connectionsLost).toBe(1)
      expect(stats.serverKills).toBe(1)
      expect(worker.replies.filter((r) => r.crashed)).toEqual([])
      expect(worker.stderr()).toBe('')
    },
    60_000,
  )
})
