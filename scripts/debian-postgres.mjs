// Starts a PostgreSQL of Debian's packages (apt-get install -y postgresql-15) for tests and
// benchmarks, beside the embedded PostgreSQL 18: the library has to work with older servers too.
// A fresh cluster in a temp folder, its postmaster a foreground child process (as PgBouncer is in
// test/support/pgbouncer.mjs), not a pg_ctl daemon: a child can be tied to the life of this process.
import { execFile as execFileCallback, execFileSync, spawn } from 'node:child_process'
import {
  chownSync,
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort, serverPids } from './embedded-postgres.mjs'

// pg from this checkout, found from this file: the process may have been started anywhere.
const { Client } = createRequire(import.meta.url)('pg')

const execFile = promisify(execFileCallback)
const isRoot = process.getuid?.() === 0
const PREFIX = 'tenant-pools-debian-pg-'
// util-linux (Essential on Debian): has the kernel signal the server when this process dies.
const SETPRIV = '/usr/bin/setpriv'
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Debian's bin folder of PostgreSQL `major`, if installed (/usr/lib/postgresql/15/bin). */
export function debianPostgresBin(major = 15) {
  const bin = `/usr/lib/postgresql/${major}/bin`
  return existsSync(join(bin, 'postgres')) && existsSync(join(bin, 'initdb')) ? bin : undefined
}

// PostgreSQL refuses to run as root: as root, initdb and the server run as the `postgres` user (made
// by Debian's postgresql-common), which owns the cluster's folder.
function serverIds() {
  if (!isRoot) return {}
  try {
    const id = (flag) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim())
    return { uid: id('-u'), gid: id('-g') }
  } catch {
    throw new Error('As root, PostgreSQL runs as the "postgres" user, and there is none')
  }
}

const alive = (pid) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

// The folders (tens of MB) of processes that died without stop(), a killed test run: their server
// went with them (see launch), their folder stays until a later start removes it here. One whose
// server still runs (no setpriv, or not yet exited) is left alone.
function sweep() {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(PREFIX)) continue
    const dir = join(tmpdir(), name)
    try {
      if (alive(Number(readFileSync(join(dir, 'owner.pid'), 'utf8')))) continue
      const pidFile = join(dir, 'data', 'postmaster.pid')
      if (existsSync(pidFile) && alive(Number(readFileSync(pidFile, 'utf8').split('\n')[0]))) continue
    } catch {
      continue // still being made (no owner.pid yet), or removed meanwhile
    }
    rmSync(dir, { recursive: true, force: true })
  }
}

const exits = (child, ms) =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(true)
    const done = () => {
      clearTimeout(timer)
      resolve(true)
    }
    const timer = setTimeout(() => {
      child.off('exit', done)
      resolve(false)
    }, ms)
    child.once('exit', done)
  })

/**
 * Starts the postmaster on `port` and waits until it accepts connections. Throws with the log's end
 * if it does not; `portTaken` when another process had the port (freePort only finds one free).
 */
async function launch({ bin, dir, dataDir, port, flags, ids }) {
  const logPath = join(dir, 'postgres.log')
  const log = openSync(logPath, 'a')
  const settings = [
    'listen_addresses=127.0.0.1',
    'max_connections=200',
    // A throwaway cluster: durability buys nothing, and costs the tests time.
    'fsync=off',
    'synchronous_commit=off',
    'full_page_writes=off',
    ...flags,
  ]
  // -k: its own socket folder, not Debian's /var/run/postgresql (absent, or another cluster's).
  const args = ['-D', dataDir, '-p', String(port), '-k', dir, ...settings.flatMap((s) => ['-c', s])]
  // --pdeathsig: the kernel sends the postmaster SIGQUIT (an immediate shutdown) when this process
  // dies, even by SIGKILL, which no exit hook sees. Set after spawn's uid switch, which would clear it.
  const postgres = join(bin, 'postgres')
  const [file, argv] = existsSync(SETPRIV)
    ? [SETPRIV, ['--pdeathsig', 'SIGQUIT', postgres, ...args]]
    : [postgres, args]
  const child = spawn(file, argv, { ...ids, cwd: dir, stdio: ['ignore', log, log] })
  closeSync(log)
  let spawnError
  child.on('error', (err) => (spawnError = err))
  const failure = (message, portTaken = false) => {
    const tail = readFileSync(logPath, 'utf8').trim().split('\n').slice(-5).join('\n')
    const error = new Error(`PostgreSQL (${postgres}) ${message}${tail ? `:\n${tail}` : ''}`)
    return Object.assign(error, { portTaken })
  }
  const deadline = Date.now() + 30_000
  for (;;) {
    if (spawnError) throw failure(`could not be started: ${spawnError.message}`)
    if (child.exitCode !== null || child.signalCode !== null) {
      const log = readFileSync(logPath, 'utf8')
      throw failure(`exited with ${child.exitCode ?? child.signalCode}`, log.includes('already in use'))
    }
    // A time limit: whatever else holds the port may never answer (a server a test stopped).
    const connectionTimeoutMillis = 5_000
    const client = new Client({
      host: '127.0.0.1',
      port,
      user: 'postgres',
      database: 'postgres',
      connectionTimeoutMillis,
    })
    try {
      await client.connect()
      // Ours, not another server that had the port first and trusts 127.0.0.1 just as well.
      const { rows } = await client.query('SHOW data_directory')
      if (rows[0].data_directory === dataDir) return { child, client }
      await client.end()
      child.kill('SIGQUIT')
      await exits(child, 5_000)
      throw failure(`found port ${port} taken`, true)
    } catch (err) {
      if (err.portTaken) throw err
      await client.end().catch(() => {})
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw failure('did not accept connections in 30 s')
    }
    await sleep(50)
  }
}

/**
 * Makes a cluster in a new temp folder and starts it: superuser postgres (password postgres, though
 * 127.0.0.1 is trusted), database `database`, on `port` or a free one. `flags`: more `name=value`
 * settings. stop() shuts it down and removes the folder; it never rejects, and may be called again.
 * @returns {Promise<{ url: string, port: number, version: number, dataDir: string, stop: () => Promise<void> }>}
 */
export async function startDebianPostgres({
  major = 15,
  database = 'tenant_pools_test',
  port,
  flags = [],
  stopGraceMs = 10_000, // a fast shutdown taking longer is made an immediate one (see stop)
} = {}) {
  const bin = debianPostgresBin(major)
  if (!bin) throw new Error(`PostgreSQL ${major} is not installed (apt-get install -y postgresql-${major})`)
  sweep()
  const ids = serverIds()
  // mkdtemp makes it 0700: the server's user must own it to make the cluster and its socket in it.
  const dir = mkdtempSync(join(tmpdir(), PREFIX))
  if (isRoot) chownSync(dir, ids.uid, ids.gid)
  // Who made it: sweep() removes it once this process is gone.
  writeFileSync(join(dir, 'owner.pid'), String(process.pid))
  const dataDir = join(dir, 'data')
  let child
  try {
    try {
      await execFile(
        join(bin, 'initdb'),
        ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
        { ...ids, cwd: dir },
      )
    } catch (err) {
      throw new Error(`initdb (${bin}) failed: ${err.stderr || err.message}`)
    }
    let started
    for (let attempt = 1; !started; attempt++) {
      const p = port ?? (await freePort())
      try {
        started = { port: p, ...(await launch({ bin, dir, dataDir, port: p, flags, ids })) }
      } catch (err) {
        // A port freePort found free can be taken before the server binds it: another one, then.
        if (!err.portTaken || port !== undefined || attempt === 3) throw err
      }
    }
    child = started.child
    try {
      // The password matters only if pg_hba.conf stops trusting 127.0.0.1; URLs carry it anyway.
      await started.client.query(`ALTER ROLE postgres PASSWORD 'postgres'`)
      if (database !== 'postgres') {
        await started.client.query(`CREATE DATABASE "${database.replaceAll('"', '""')}"`)
      }
    } finally {
      await started.client.end()
    }
    port = started.port
  } catch (err) {
    child?.kill('SIGQUIT')
    if (child) await exits(child, 5_000)
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  // A process that exits without stop() (process.exit, an uncaught error) takes both with it.
  const onExit = () => {
    child.kill('SIGQUIT')
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
  }
  process.once('exit', onExit)
  let stopping
  const stop = () => {
    stopping ??= (async () => {
      process.removeListener('exit', onExit)
      try {
        child.kill('SIGINT') // a fast shutdown: sessions ended, a checkpoint
        if (!(await exits(child, stopGraceMs))) {
          // It waits for every backend to exit, and one a test stopped (SIGSTOP) never does: an
          // immediate shutdown, with everything resumed so that it can be obeyed.
          process.stderr.write(`[postgres ${major}] no fast shutdown in ${stopGraceMs} ms: SIGQUIT\n`)
          let pids = []
          try {
            pids = serverPids(dataDir)
          } catch {
            // no postmaster.pid: exiting meanwhile
          }
          child.kill('SIGQUIT')
          for (const pid of pids) {
            try {
              process.kill(pid, 'SIGCONT')
            } catch {
              // gone meanwhile
            }
          }
          if (!(await exits(child, 5_000))) {
            child.kill('SIGKILL')
            await exits(child, 5_000)
          }
        }
        rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
      } catch (err) {
        process.stderr.write(`[postgres ${major}] stopping the server of ${dataDir}: ${err.message}\n`)
      }
    })()
    return stopping
  }
  const url = `postgres://postgres:postgres@127.0.0.1:${port}/${encodeURIComponent(database)}`
  return { url, port, version: major, dataDir, stop }
}
