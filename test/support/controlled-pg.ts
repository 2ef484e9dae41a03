// A PostgreSQL of one test file's own, in a child process it can stop and start (pg-server.mjs).
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { chmodSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { freePort } from './free-port'

export interface ControlledServer {
  url: string
  /** Every line the child printed, the server's log included. */
  lines: string[]
  stop(): Promise<void>
  start(): Promise<void>
  /** SIGSTOP on the postmaster and its backends: connections hang instead of failing. */
  freeze(): Promise<void>
  thaw(): Promise<void>
  quit(): Promise<void>
}

export async function controlledServer(settings: string[] = []): Promise<ControlledServer> {
  const dir = mkdtempSync(join(tmpdir(), 'tenant-pools-controlled-'))
  chmodSync(dir, 0o755)
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [
    'test/support/pg-server.mjs',
    join(dir, 'data'),
    String(await freePort()),
    ...settings,
  ])
  const lines: string[] = []
  const waiters = new Map<string, () => void>()
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line)
    for (const [prefix, resolve] of waiters) {
      if (line.startsWith(prefix)) {
        waiters.delete(prefix)
        resolve()
      }
    }
  })
  const expectLine = (prefix: string) =>
    new Promise<void>((resolve) => {
      waiters.set(prefix, resolve)
    })
  const command = async (cmd: string, answer: string) => {
    const answered = expectLine(answer)
    child.stdin.write(`${cmd}\n`)
    await answered
  }
  await expectLine('ready')
  const url = (lines.find((l) => l.startsWith('ready')) as string).split(' ')[1] as string
  return {
    url,
    lines,
    stop: () => command('stop', 'stopped'),
    start: () => command('start', 'started'),
    freeze: () => command('freeze', 'frozen'),
    thaw: () => command('thaw', 'thawed'),
    quit: async () => {
      child.stdin.write('quit\n')
      await new Promise((r) => child.once('exit', r))
    },
  }
}
