// A PostgreSQL that a test can stop and start: a child process driven by stdin lines
// ("stop", "start", "freeze", "thaw", "quit"), answering "ready", "stopped", "started", "frozen",
// "thawed" on stdout. A frozen server (SIGSTOP on the postmaster and every backend) accepts TCP
// connections in the kernel and answers nothing: what a failover or a partition looks like. Further arguments
// are server settings (name=value); the server's own log lines come out prefixed with "[postgres]".
// The folder holding the data folder is the caller's temporary one: it is removed when the server
// quits, or when the caller goes away (stdin closed), else every test run leaves a cluster behind.
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { startEmbeddedPostgres } from '../../scripts/embedded-postgres.mjs'

const [dataDir, port, ...flags] = process.argv.slice(2)
const start = () =>
  startEmbeddedPostgres({ dataDir, port: Number(port), database: 'chaos', flags, log: true })
let server = await start()
process.stdout.write(`ready ${server.url}\n`)

// The postmaster (first line of postmaster.pid) and its children, from /proc.
const serverPids = () => {
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
const signalAll = (signal) => {
  let pids = []
  try {
    pids = serverPids()
  } catch {
    return // not running
  }
  for (const pid of pids) {
    try {
      process.kill(pid, signal)
    } catch {
      // gone meanwhile
    }
  }
}

createInterface({ input: process.stdin }).on('line', async (line) => {
  if (line === 'freeze') {
    // The postmaster first, so it forks no backend that would escape the freeze.
    signalAll('SIGSTOP')
    process.stdout.write('frozen\n')
    return
  }
  if (line === 'thaw') {
    signalAll('SIGCONT')
    process.stdout.write('thawed\n')
    return
  }
  if (line === 'stop') {
    await server.stop()
    process.stdout.write('stopped\n')
  } else if (line === 'start') {
    server = await start()
    process.stdout.write('started\n')
  } else if (line === 'quit') {
    await quit()
  }
})
process.stdin.on('end', () => quit())

async function quit() {
  signalAll('SIGCONT')
  await server.stop().catch(() => {})
  rmSync(dirname(dataDir), { recursive: true, force: true })
  process.exit(0)
}
