// `npm run mutate`: the test servers started once, then StrykerJS. Jest's globalSetup runs again
// for every mutant; with DATABASE_URL, TEST_REPLICA_URL and TEST_CLUSTER_B_URL already set it
// starts nothing, so a mutant costs its tests and not three server starts.
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import globalSetup from '../test/support/global-setup.mjs'
import globalTeardown from '../test/support/global-teardown.mjs'

await globalSetup()
const code = await new Promise((resolve) => {
  const child = spawn('npx', ['stryker', 'run', ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: process.env,
  })
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
  child.once('exit', (status) => resolve(status ?? 1))
})
await globalTeardown()
// Replicas of test runners Stryker killed at a timeout (their environments never tore down).
createRequire(import.meta.url)('../test/support/replica-sweep.cjs').sweepReplicas()
process.exit(code)
