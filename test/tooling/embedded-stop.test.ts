// The test servers' stop (scripts/embedded-postgres.mjs) must end even when a test left a backend
// stopped (SIGSTOP): a fast shutdown waits for every backend, and a stopped one never exits, so a
// jest run (or `npm run mutate`) would wait at its teardown for ever.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'

const script = `
import pg from 'pg'
import { startEmbeddedPostgres } from ${JSON.stringify(pathToFileURL(join(__dirname, '../../scripts/embedded-postgres.mjs')).href)}
const server = await startEmbeddedPostgres({ stopGraceMs: 300 })
const client = new pg.Client(server.url)
client.on('error', () => {})
await client.connect()
const { rows } = await client.query('SELECT pg_backend_pid() AS pid')
process.kill(rows[0].pid, 'SIGSTOP')
console.log(JSON.stringify({ backend: rows[0].pid, dataDir: server.dataDir }))
await server.stop()
console.log('stopped')
process.exit(0)
`

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('Test servers: stop', () => {
  it('ends a server one of whose backends was stopped, and removes its data folder', async () => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: join(__dirname, '../..'),
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
    })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    const exit = new Promise<number | null>((resolve) => child.once('exit', resolve))
    // Without the bound the child never exits; the test gives up well before jest does.
    const timer = setTimeout(() => child.kill('SIGKILL'), 40_000)
    const code = await exit.finally(() => clearTimeout(timer))
    const started = JSON.parse(out.split('\n')[0] ?? '{}') as { backend: number; dataDir: string }
    if (code !== 0 && started.backend) process.kill(started.backend, 'SIGCONT')

    expect(code).toBe(0)
    expect(out).toContain('stopped')
    expect(stderr).toContain('immediate shutdown')
    expect(alive(started.backend)).toBe(false)
    expect(existsSync(dirname(started.dataDir))).toBe(false)
  })
})
