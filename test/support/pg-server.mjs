// A PostgreSQL that a test can stop and start: a child process driven by stdin lines
// ("stop", "start", "freeze", "thaw", "quit"), answering "ready", "stopped", "started", "frozen",
// "thawed" on stdout. A frozen server (SIGSTOP on the postmaster and every backend) accepts TCP
// connections in the kernel and answers nothing: what a failover or a partition looks like. Further arguments
// are server settings (name=value); the server's own log lines come out prefixed with "[postgres]".
// The folder holding the data folder is the caller's temporary one: it is removed when the server
// quits, or when the caller goes away (stdin closed), else every test run leaves a cluster behind.
import { rmSync } from 'node:fs'
import { dirname } from 'node:path'
import { createInterface } from 'node:readline'
import { serverPids, startEmbeddedPostgres } from '../../scripts/embedded-postgres.mjs'

const [dataDir, port, ...flags] = process.argv.slice(2)
const start = () =>
  startEmbeddedPostgres({ dataDir, port: Number(port), database: 'chaos', flags, log: true })
let server = await start()
process.stdout.write(`ready ${server.url}\n`)

const signalAll = (signal) => {
  let pids = []
  try {
    pids = serverPids(dataDir)
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
