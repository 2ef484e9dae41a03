// Root with a private checkout: as root the server runs as a separate `postgres` user, which cannot
// enter a folder of mode 0700 (as /root is) to reach the binaries under node_modules or a data folder
// there. The checkout is imitated by a private folder holding a hard-linked copy of node_modules and
// the start script; the embedded server must start from it, for the tests (a fresh data folder) and
// for `npm start` (a persistent one inside the checkout). As another user it simply runs as that user.
import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const root = resolve(__dirname, '../..')
let checkout: string
let temp: string

beforeAll(() => {
  // Inside the repository, so that node_modules can be hard-linked (same file system): fast.
  checkout = mkdtempSync(join(root, '.private-checkout-'))
  chmodSync(checkout, 0o700)
  execFileSync('cp', ['-al', join(root, 'node_modules'), join(checkout, 'node_modules')])
  mkdirSync(join(checkout, 'scripts'))
  cpSync(join(root, 'scripts', 'embedded-postgres.mjs'), join(checkout, 'scripts', 'embedded-postgres.mjs'))
  // Run through tsx, as npm start runs scripts/start.ts: it compiles the helper to CommonJS.
  writeFileSync(
    join(checkout, 'start.ts'),
    `// @ts-nocheck
import { startEmbeddedPostgres } from './scripts/embedded-postgres.mjs'
async function main() {
  const fresh = await startEmbeddedPostgres({ database: 'private_fresh' })
  await fresh.stop()
  const kept = await startEmbeddedPostgres({ database: 'private_kept', dataDir: '${join(checkout, '.local', 'pg')}' })
  await kept.stop()
  console.log(JSON.stringify({ fresh: fresh.url, kept: kept.dataDir }))
}
main()`,
  )
  // A temp folder of its own, so that the copy of the binaries is made, not found from a past run.
  temp = mkdtempSync(join(tmpdir(), 'tenant-pools-private-tmp-'))
  chmodSync(temp, 0o1777)
}, 60_000)

afterAll(() => {
  rmSync(checkout, { recursive: true, force: true })
  rmSync(temp, { recursive: true, force: true })
})

describe('e2e: the embedded server from a private checkout', () => {
  it('starts with a fresh and with a persistent data folder, whoever runs it', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'start.ts'], {
      cwd: checkout,
      env: { ...process.env, TMPDIR: temp },
      encoding: 'utf8',
      timeout: 120_000,
    })
    expect({
      status: run.status,
      stderr: run.stderr.split('\n').filter((l) => /Error|EACCES/.test(l)),
    }).toEqual({
      status: 0,
      stderr: [],
    })
    const started = JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}') as {
      fresh?: string
      kept?: string
    }
    expect(started.fresh).toMatch(/^postgres:\/\/postgres:postgres@127\.0\.0\.1:\d+\/private_fresh$/)
    const asRoot = process.getuid?.() === 0
    // As root the persistent folder moved where the postgres user can reach it; otherwise it stays.
    expect(started.kept).toEqual(asRoot ? expect.stringContaining(temp) : join(checkout, '.local', 'pg'))
  }, 180_000)
})
