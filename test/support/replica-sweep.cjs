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
    try {
      const postmaster = Number(
        fs.readFileSync(path.join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0],
      )
      process.kill(postmaster, 'SIGQUIT') // PostgreSQL's immediate shutdown
    } catch {
      // not running
    }
    fs.rmSync(dir, { recursive: true, force: true })
    swept++
  }
  return swept
}

module.exports = { sweepReplicas }
