// The local stack's settings, read once from the environment: npm start (scripts/start.ts) and
// npm run reset (scripts/reset.ts) must agree on the folder, the ports and where the data lives.
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'

export const localConfig = {
  dir: resolve(process.env.TENANT_POOLS_LOCAL_DIR ?? '.local'),
  pgPort: Number(process.env.TENANT_POOLS_LOCAL_PGPORT ?? 54329),
  smPort: Number(process.env.TENANT_POOLS_LOCAL_SM_PORT ?? 4566),
  httpPort: Number(process.env.TENANT_POOLS_LOCAL_HTTP_PORT ?? 3000),
  lambdaPort: Number(process.env.TENANT_POOLS_LOCAL_LAMBDA_PORT ?? 3002),
  websocketPort: Number(process.env.TENANT_POOLS_LOCAL_WEBSOCKET_PORT ?? 3001),
  demoTenants: ['acme', 'globex'],
  clusters: process.env.TENANT_POOLS_LOCAL_CLUSTERS ?? '1',
  pgPortB: Number(process.env.TENANT_POOLS_LOCAL_PGPORT_B ?? 54330),
}

/** The ports the stack listens on, each with the variable that moves it. */
export function localPorts(config = localConfig): Array<{ port: number; variable: string; what: string }> {
  return [
    { port: config.pgPort, variable: 'TENANT_POOLS_LOCAL_PGPORT', what: 'PostgreSQL' },
    ...(config.clusters === '2'
      ? [{ port: config.pgPortB, variable: 'TENANT_POOLS_LOCAL_PGPORT_B', what: 'PostgreSQL of cluster b' }]
      : []),
    { port: config.smPort, variable: 'TENANT_POOLS_LOCAL_SM_PORT', what: 'the local Secrets Manager' },
    { port: config.httpPort, variable: 'TENANT_POOLS_LOCAL_HTTP_PORT', what: 'the HTTP API' },
    {
      port: config.lambdaPort,
      variable: 'TENANT_POOLS_LOCAL_LAMBDA_PORT',
      what: "serverless-offline's Lambda API",
    },
    {
      port: config.websocketPort,
      variable: 'TENANT_POOLS_LOCAL_WEBSOCKET_PORT',
      what: "serverless-offline's websocket",
    },
  ]
}

/** Whether `port` can be bound on 127.0.0.1 now (released at once). */
export const bindable = (port: number) =>
  new Promise<boolean>((done) => {
    const server = createServer()
    server.once('error', () => done(false))
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)))
  })

/** The file holding the pid of the npm start that runs on this folder, while it runs. */
export const lockFile = (config = localConfig) => join(config.dir, 'start.pid')

export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: alive, another user's.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The pid in `file` (a lock file, or a data folder's postmaster.pid) if that process is alive. */
export function livePid(file: string): number | undefined {
  if (!existsSync(file)) return undefined
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0])
  return pid > 0 && isAlive(pid) ? pid : undefined
}
