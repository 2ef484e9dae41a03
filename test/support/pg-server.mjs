// A PostgreSQL that a test can stop and start: a child process driven by stdin lines
// ("stop", "start", "quit"), answering "ready", "stopped", "started" on stdout. Further arguments
// are server settings (name=value); the server's own log lines come out prefixed with "[postgres]".
import { createInterface } from 'node:readline'
import { startEmbeddedPostgres } from '../../scripts/embedded-postgres.mjs'

const [dataDir, port, ...flags] = process.argv.slice(2)
const start = () =>
  startEmbeddedPostgres({ dataDir, port: Number(port), database: 'chaos', flags, log: true })
let server = await start()
process.stdout.write(`ready ${server.url}\n`)

createInterface({ input: process.stdin }).on('line', async (line) => {
  if (line === 'stop') {
    await server.stop()
    process.stdout.write('stopped\n')
  } else if (line === 'start') {
    server = await start()
    process.stdout.write('started\n')
  } else if (line === 'quit') {
    await server.stop()
    process.exit(0)
  }
})
process.stdin.on('end', async () => {
  await server.stop().catch(() => {})
  process.exit(0)
})
