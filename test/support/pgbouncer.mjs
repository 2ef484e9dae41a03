// Our own PgBouncer (Debian's package: `apt-get install -y pgbouncer`) in front of a test server, a
// foreground child process on a free port: what a transaction-pooling proxy such as RDS Proxy does to
// startup parameters, SETs and password rotation, seen for real.
import { execFileSync, spawn } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../../scripts/embedded-postgres.mjs'

const isRoot = process.getuid?.() === 0

/** The pgbouncer binary, or undefined. Debian puts it in /usr/sbin, often not on PATH. */
export function pgbouncerBinary() {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/usr/local/bin']
  return dirs
    .filter((d) => d.startsWith('/'))
    .map((d) => join(d, 'pgbouncer'))
    .find((p) => existsSync(p))
}

// auth_file lines: "name" "password", double quotes doubled. Plain-text passwords let PgBouncer log in
// to a server that asks for a password in clear (initdb --auth=password, as embedded-postgres does).
const authFile = (users) =>
  users
    .map(({ name, password }) => `"${name.replaceAll('"', '""')}" "${password.replaceAll('"', '""')}"\n`)
    .join('')

/**
 * Starts PgBouncer in transaction mode in front of 127.0.0.1:`targetPort`, for `users`
 * ([{ name, password }]). Returns its port, `setUsers(users)` (a rotation: rewrite auth_file and
 * reload) and `stop()`.
 */
export async function startPgBouncer({ targetPort, users, poolSize = 2 }) {
  const bin = pgbouncerBinary()
  if (!bin) throw new Error('pgbouncer is not installed (apt-get install -y pgbouncer)')
  const port = await freePort()
  // PgBouncer refuses to run as root: as root it runs as `postgres`, which must own its files.
  const ids = isRoot
    ? {
        uid: Number(execFileSync('id', ['-u', 'postgres'])),
        gid: Number(execFileSync('id', ['-g', 'postgres'])),
      }
    : {}
  const dir = mkdtempSync(join(tmpdir(), 'tenant-pools-pgbouncer-'))
  const write = (path, text) => {
    writeFileSync(path, text, { mode: 0o600 })
    if (isRoot) chownSync(path, ids.uid, ids.gid)
  }
  if (isRoot) chownSync(dir, ids.uid, ids.gid)
  chmodSync(dir, 0o700)
  const users_ = join(dir, 'userlist.txt')
  write(users_, authFile(users))
  const settings = {
    listen_addr: '127.0.0.1',
    listen_port: port,
    unix_socket_dir: '',
    auth_type: 'scram-sha-256',
    auth_file: users_,
    pool_mode: 'transaction',
    default_pool_size: poolSize,
    max_client_conn: 200,
    // A refused server login blocks the pool for server_login_retry (15 s by default).
    server_login_retry: 1,
    logfile: '',
    pidfile: '',
  }
  const ini = join(dir, 'pgbouncer.ini')
  write(
    ini,
    `[databases]\n* = host=127.0.0.1 port=${targetPort}\n\n[pgbouncer]\n${Object.entries(settings)
      .map(([k, v]) => `${k} = ${v}\n`)
      .join('')}`,
  )
  const child = spawn(bin, [ini], { ...ids, stdio: ['ignore', 'ignore', 'pipe'] })
  let output = ''
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pgbouncer did not start in 10 s:\n${output}`)), 10_000)
    child.stderr.on('data', (chunk) => {
      output += chunk
      if (output.includes('process up')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`pgbouncer exited with ${code}:\n${output}`))
    })
  })
  child.stderr.removeAllListeners('data')
  child.stderr.resume()
  // It holds passwords: neither it nor its folder may outlive the test process.
  const cleanUp = () => {
    child.kill('SIGTERM')
    rmSync(dir, { recursive: true, force: true })
  }
  process.once('exit', cleanUp)
  let reloads = 0
  return {
    port,
    setUsers(next) {
      write(users_, authFile(next))
      // PgBouncer skips an auth file whose mtime (whole seconds) and size are unchanged since it last
      // read it: a rotation within the second, to a password of the same length, would go unseen.
      const later = new Date(Date.now() + 2_000 * ++reloads)
      utimesSync(users_, later, later)
      child.kill('SIGHUP') // RELOAD
    },
    stop: () =>
      new Promise((resolve) => {
        process.removeListener('exit', cleanUp)
        const done = () => resolve(rmSync(dir, { recursive: true, force: true }))
        if (child.exitCode !== null) return done()
        child.once('exit', done)
        child.kill('SIGTERM')
      }),
  }
}
