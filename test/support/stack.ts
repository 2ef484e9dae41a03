// Starts the local stack (`npm start`'s script) on free ports in a temp dir, for the e2e tests.
import { type ChildProcess, spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

// Below Linux's ephemeral range (32768 and up): a port handed out by listen(0) to another test's
// server, at any moment, can never be one of ours.
const PORT_LOW = 20_000
const PORT_HIGH = 32_000

/** Whether `port` can be bound now on 127.0.0.1 (it is released at once). */
const bindable = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })

/** `n` distinct ports, each free when picked, outside the ephemeral range. */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>()
  while (ports.size < n) {
    const port = PORT_LOW + Math.floor(Math.random() * (PORT_HIGH - PORT_LOW))
    if (!ports.has(port) && (await bindable(port))) ports.add(port)
  }
  return [...ports]
}

export interface Stack {
  url: string
  lambdaPort: number
  pgPort: number
  /** Cluster b's port, when started with TENANT_POOLS_LOCAL_CLUSTERS=2. */
  pgPortB: number
  smUrl: string
  adminKey: string
  /** The stack's local folder (secrets, admin key, JWT key). */
  localDir: string
  output: () => string
  /** start.ts's process. */
  pid: number
  /** How that process ended, once it has. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  stop: () => Promise<void>
}

/**
 * `ownGroup`: start.ts leads a process group of its own, with PostgreSQL in it, as in a terminal,
 * where Ctrl-C sends SIGINT to the whole group (`process.kill(-stack.pid, 'SIGINT')`).
 */
export async function startStack(
  env: Record<string, string> = {},
  timeoutMs = 150_000,
  { ownGroup = false } = {},
): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'tenant-pools-stack-'))
  chmodSync(dir, 0o755)
  const [pgPort, smPort, httpPort, lambdaPort, websocketPort, pgPortB] = (await freePorts(6)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ]
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
    env: {
      ...process.env,
      TENANT_POOLS_LOCAL_DIR: join(dir, 'local'),
      TENANT_POOLS_LOCAL_PGPORT: String(pgPort),
      TENANT_POOLS_LOCAL_PGPORT_B: String(pgPortB),
      TENANT_POOLS_LOCAL_SM_PORT: String(smPort),
      TENANT_POOLS_LOCAL_HTTP_PORT: String(httpPort),
      TENANT_POOLS_LOCAL_LAMBDA_PORT: String(lambdaPort),
      TENANT_POOLS_LOCAL_WEBSOCKET_PORT: String(websocketPort),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: ownGroup,
  })
  let out = ''
  child.stdout?.on('data', (d) => {
    out += d
  })
  child.stderr?.on('data', (d) => {
    out += d
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  // The stack's clusters live in its folder (two data folders, 80 MB): removed once it has stopped.
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGINT')
    await exited
    rmSync(dir, { recursive: true, force: true })
  }
  const url = `http://127.0.0.1:${httpPort}`
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the stack exited early:\n${out}`)
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`the stack did not answer /health in ${timeoutMs} ms:\n${out}`)
    }
    // Our /health's own answer, not just any 200: a stranger on the port must not pass for the stack.
    const ok = await fetch(`${url}/health`)
      .then(async (r) => r.ok && JSON.stringify(await r.json()) === '{"ok":true}')
      .catch(() => false)
    if (ok) break
    await new Promise((r) => setTimeout(r, 500))
  }
  const adminKey = readFileSync(join(dir, 'local', 'admin-key'), 'utf8')
  return {
    url,
    lambdaPort,
    pgPort,
    pgPortB,
    smUrl: `http://127.0.0.1:${smPort}`,
    adminKey,
    localDir: join(dir, 'local'),
    output: () => out,
    pid: child.pid as number,
    exited,
    stop,
  }
}
