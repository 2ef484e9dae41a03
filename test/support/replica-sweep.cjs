// Replicas (replica.mjs) run under pg_ctl, on their own: a test process that dies before its
// afterEach, as a mutation run's test runner does when Stryker kills it at a mutant's timeout, or
// that lives on after a hook gave up, leaves its replica running and its folder (hundreds of MB)
// behind. Each replica's folder names the process that made it (owner.pid); this stops and removes
// those whose owner is gone, or is this process and has no use for them any more.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const PREFIX = 'tenant-pools-replica-'

const alive = (pid) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

// The running postmaster of the replica in `dataDir`, if any. Not simply line 1 of its
// postmaster.pid: a replica is made by copying its primary's data folder, postmaster.pid included
// (removed just after), so a maker killed in between leaves the primary's pid there, and a pid of a
// postmaster long gone may belong to another process now. Both once had the sweep stop the main
// test server in the middle of a mutation run. So the file must name this folder (its line 2), and
// the process must be a postgres running on it.
function replicaPostmaster(dataDir) {
  try {
    const [pid, dir] = fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')
    if (path.resolve(dir) !== path.resolve(dataDir)) return undefined
    const args = fs.readFileSync(`/proc/${Number(pid)}/cmdline`, 'utf8').split('\0')
    if (!path.basename(args[0] ?? '').startsWith('postgres')) return undefined
    const d = args.indexOf('-D')
    if (d === -1 || path.resolve(args[d + 1] ?? '') !== path.resolve(dataDir)) return undefined
    return Number(pid)
  } catch {
    return undefined // no postmaster.pid, or no such process: not running
  }
}

/** Stops and removes leftover replicas: those of dead processes, and (mine: true) this process's. */
function sweepReplicas({ mine = false } = {}) {
  let swept = 0
  for (const name of fs.readdirSync(os.tmpdir())) {
    if (!name.startsWith(PREFIX)) continue
    const dir = path.join(os.tmpdir(), name)
    let owner
    try {
      owner = Number(fs.readFileSync(path.join(dir, 'owner.pid'), 'utf8'))
    } catch {
      continue // still being made, or made before owners were recorded
    }
    if (!(owner === process.pid ? mine : !alive(owner))) continue
    const postmaster = replicaPostmaster(path.join(dir, 'data'))
    if (postmaster !== undefined) {
      try {
        process.kill(postmaster, 'SIGQUIT') // PostgreSQL's immediate shutdown
      } catch {
        // gone meanwhile
      }
    }
    fs.rmSync(dir, { recursive: true, force: true })
    swept++
  }
  return swept
}

module.exports = { sweepReplicas }
