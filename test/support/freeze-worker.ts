// A stand-in for a Lambda execution environment, driven by the freeze/thaw test. It holds warm
// pools and serves one request per stdin line; the parent SIGCONTs it after killing its backends.
// Requests: {"id":n,"tenant":"t"} runs one INSERT; {"arm":n,"tenant":"t","delayMs":d} runs the same
// request from a timer and then stops this process (SIGSTOP to itself), so the freeze always comes
// before the timer fires, and the timer is already due when the process is thawed.
// {"id":n,"tenant":"t","freezeFirst":true} stops this process as soon as the request is read, and
// serves it after the thaw from the same callback: the request was read in the poll phase before the
// freeze, so the poll phase it resumes in holds only the request, not the FATALs that came meanwhile.
import { createInterface } from 'node:readline'
import { TenantPools } from '../../lib'

// `via`: 'pgPool' sends each request through forTenant(…).asPgPool(), as Kysely or Drizzle would.
// `prewarm` ('prewarm'): one connection is opened at start, as TENANT_POOLS_PREWARM does at init,
// and {"prewarmed": outcome} replied; `idleSessionTimeoutMs`: the server's, 150 unless given.
const [connectionString, prefix, validateAfterIdleMs, via, prewarm, idleSessionTimeoutMs] =
  process.argv.slice(2)
const pools = new TenantPools({
  connectionString,
  applicationNamePrefix: prefix,
  maxPerPool: 2,
  budget: 4,
  idleSessionTimeoutMs: Number(idleSessionTimeoutMs ?? 150),
  validateAfterIdleMs: Number(validateAfterIdleMs),
  logger: { debug() {}, info() {}, warn() {}, error() {} },
})

const reply = (message: object) => process.stdout.write(`${JSON.stringify(message)}\n`)

if (prewarm === 'prewarm') void pools.prewarm().then(({ outcome }) => reply({ prewarmed: outcome }))

async function serve(id: number, tenant: string): Promise<void> {
  // As a handler's middleware does: a freeze may lie between this request and the last.
  pools.invocationStarted()
  try {
    const sql = 'INSERT INTO calls (id) VALUES ($1) RETURNING pg_backend_pid() AS pid'
    const { rows } =
      via === 'pgPool'
        ? await pools.forTenant(tenant).asPgPool().query<{ pid: number }>(sql, [id])
        : await pools.query<{ pid: number }>(tenant, sql, [id])
    reply({ id, ok: true, pid: rows[0]?.pid })
  } catch (err) {
    const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } }
    // The cause too: a failed connect says why (its SQLSTATE or socket code).
    reply({ id, ok: false, code: e.code, message: e.message, cause: e.cause?.code ?? e.cause?.message })
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const request = JSON.parse(line) as {
    id?: number
    arm?: number
    tenant: string
    delayMs?: number
    freezeFirst?: boolean
  }
  if (request.arm !== undefined) {
    const id = request.arm
    setTimeout(() => void serve(id, request.tenant), request.delayMs ?? 0)
    // Writes to a pipe are synchronous on Linux: the parent has this line before we stop.
    reply({ armed: id })
    process.kill(process.pid, 'SIGSTOP')
  } else if (request.id !== undefined) {
    if (request.freezeFirst) {
      reply({ freezing: request.id })
      process.kill(process.pid, 'SIGSTOP')
    }
    void serve(request.id, request.tenant)
  }
})

process.on('uncaughtException', (err) => {
  reply({ crashed: true, code: (err as { code?: string }).code, message: err.message })
  process.exit(1)
})

process.stdin.on('end', () => {
  void pools.end().then(() => reply({ stats: pools.stats().counters }))
})
