// A move in a process of its own, killed (SIGKILL, from itself) at one of its steps: a Lambda cut
// short by its timeout mid-move, its sockets closed by the kernel. Run by move.kill.test.ts with
// `node --import tsx`; what it needs comes in the environment: DATABASE_URL, TEST_CLUSTER_B_URL,
// MOVE_TENANT, MOVE_TARGET, MOVE_KILL_AT (a MoveStep) and MOVE_APP_PREFIX (its application_name
// prefix, so the test can wait for its backends to be gone). If it is not killed, it prints its
// answer as one line of JSON and exits.
import { type MoveStep, moveTenant } from '../../functions/admin/move'
import { TenantCatalog, TenantPools } from '../../lib'

const required = (name: string): string => {
  const value = process.env[name]
  if (!value) throw new Error(`move-worker: ${name} is not set`)
  return value
}

const silent = { debug() {}, info() {}, warn() {}, error() {} }
const pools = new TenantPools({
  connectionString: required('DATABASE_URL'),
  clusters: { b: { connectionString: required('TEST_CLUSTER_B_URL') } },
  applicationNamePrefix: required('MOVE_APP_PREFIX'),
  logger: silent,
})
const catalog = new TenantCatalog(() => pools)
const killAt = required('MOVE_KILL_AT') as MoveStep

const onStep = (step: MoveStep) => {
  if (step === killAt) process.kill(process.pid, 'SIGKILL')
}

moveTenant(pools, catalog, required('MOVE_TENANT'), required('MOVE_TARGET'), silent, { onStep })
  .then(
    (report) => process.stdout.write(`${JSON.stringify({ report })}\n`),
    (err: { status?: number; code?: string; message?: string }) =>
      process.stdout.write(
        `${JSON.stringify({ status: err.status, code: err.code, message: err.message })}\n`,
      ),
  )
  .finally(() => pools.end())
