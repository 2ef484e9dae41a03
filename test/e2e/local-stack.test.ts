// npm start as a developer meets it: what it prints, how it refuses a request with no token, a taken
// port and a reset while it runs, and what Ctrl-C leaves behind (nothing).
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { SignJWT } from 'jose'
import { bindable } from '../../scripts/local-config'
import { LOCAL_JWT, localToken } from '../../scripts/local-jwt'
import { freePorts, type Stack, startStack } from '../support/stack'
import { stackApi } from '../support/stack-api'

const root = resolve(__dirname, '../..')
let stack: Stack
const { api, admin } = stackApi(() => stack)

beforeAll(async () => {
  stack = await startStack({}, undefined, { ownGroup: true })
}, 180_000)

afterAll(async () => {
  await stack?.stop()
})

interface Run {
  code: number | null
  output: string
}

/** Runs one of the local scripts (start.ts, reset.ts) to its end with `env`. */
const runScript = (script: string, env: Record<string, string>) =>
  new Promise<Run>((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join('scripts', script)], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (d) => {
      output += d
    })
    child.stderr.on('data', (d) => {
      output += d
    })
    child.once('exit', (code) => done({ code, output }))
  })

const expectTenantRequired = (res: Awaited<ReturnType<typeof api>>) => {
  expect({
    status: res.status,
    code: res.body.error?.code,
    requestId: typeof res.body.error?.requestId,
  }).toEqual({ status: 401, code: 'TENANT_REQUIRED', requestId: 'string' })
}

describe('e2e: the local stack', () => {
  it('answers a request without a valid token with the documented 401 TENANT_REQUIRED', async () => {
    expectTenantRequired(await api('GET', '/orders'))
    expectTenantRequired(await api('GET', '/orders', { headers: { authorization: 'Bearer' } }))
    const expired = await localToken(stack.localDir, 'acme', -60)
    expectTenantRequired(await api('GET', '/orders', { headers: { authorization: `Bearer ${expired}` } }))
    // Signed with another key: the local authorizer checks the signature too.
    const forged = await new SignJWT({ tenant_id: 'acme' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(LOCAL_JWT.issuer)
      .setAudience(LOCAL_JWT.audience)
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('not the local key, not the local key'))
    expectTenantRequired(await api('GET', '/orders', { headers: { authorization: `Bearer ${forged}` } }))
    // serverless-offline's override header would name any tenant's claims: refused, even with a token.
    const override = {
      'sls-offline-authorizer-override': JSON.stringify({ jwt: { claims: { tenant_id: 'globex' } } }),
    }
    expectTenantRequired(await api('GET', '/orders', { headers: override }))
    expectTenantRequired(await api('GET', '/orders', { tenant: 'acme', headers: override }))
    // …and a valid one passes.
    expect((await api('GET', '/orders', { tenant: 'acme' })).status).toBe(200)
  })

  it('says /admin/pools reports its own execution environment only', async () => {
    const res = await admin('GET', '/admin/pools')
    expect(res.status).toBe(200)
    expect(res.body.covers).toMatch(/^this execution environment only/)
  })

  it('prints the database URL without a password, the data folder and the admin key file', () => {
    const out = stack.output()
    expect(out).toContain(`database: postgres://postgres@127.0.0.1:${stack.pgPort}/tenant_pools`)
    expect(out).not.toMatch(/postgres:\/\/[^@\s]+:[^@\s]+@/)
    expect(out).toContain(`data: ${join(stack.localDir, 'pg')}`)
    expect(out).toContain(`admin key in ${join(stack.localDir, 'admin-key')}`)
  })

  it('refuses a taken port, naming it and its variable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tenant-pools-taken-'))
    try {
      const [pg, sm, lambda, websocket] = (await freePorts(4)) as [number, number, number, number]
      const httpPort = Number(new URL(stack.url).port)
      const ports = {
        TENANT_POOLS_LOCAL_DIR: join(dir, 'local'),
        TENANT_POOLS_LOCAL_PGPORT: String(pg),
        TENANT_POOLS_LOCAL_SM_PORT: String(sm),
        TENANT_POOLS_LOCAL_HTTP_PORT: String(httpPort),
        TENANT_POOLS_LOCAL_LAMBDA_PORT: String(lambda),
        TENANT_POOLS_LOCAL_WEBSOCKET_PORT: String(websocket),
      }
      const http = await runScript('start.ts', ports)
      expect(http.code).toBe(1)
      expect(http.output).toContain(`port ${httpPort}, for the HTTP API, is in use`)
      expect(http.output).toContain('set TENANT_POOLS_LOCAL_HTTP_PORT to another port')
      const postgres = await runScript('start.ts', {
        ...ports,
        TENANT_POOLS_LOCAL_PGPORT: String(stack.pgPort),
      })
      expect(postgres.code).toBe(1)
      expect(postgres.output).toContain(`port ${stack.pgPort}, for PostgreSQL, is in use`)
      expect(postgres.output).toContain('set TENANT_POOLS_LOCAL_PGPORT to another port')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)

  it('refuses to reset while it runs', async () => {
    const reset = await runScript('reset.ts', { TENANT_POOLS_LOCAL_DIR: stack.localDir })
    expect(reset.code).toBe(1)
    expect(reset.output).toContain(`refused: npm start (pid ${stack.pid}) is running`)
    expect(existsSync(join(stack.localDir, 'pg', 'PG_VERSION'))).toBe(true)
  }, 30_000)

  it('stops on Ctrl-C: PostgreSQL down, its bundles folder removed, exit code 0; then reset wipes it', async () => {
    const bundles = join(root, `.esbuild-offline-${stack.pid}`)
    // It is there while the stack runs: its absence afterwards means something.
    expect(existsSync(bundles)).toBe(true)
    // As Ctrl-C in a terminal: to the whole group, PostgreSQL included.
    process.kill(-stack.pid, 'SIGINT')
    expect(await stack.exited).toEqual({ code: 0, signal: null })
    expect(existsSync(bundles)).toBe(false)
    expect(existsSync(join(stack.localDir, 'pg', 'postmaster.pid'))).toBe(false)
    expect(await bindable(stack.pgPort)).toBe(true)
    const reset = await runScript('reset.ts', { TENANT_POOLS_LOCAL_DIR: stack.localDir })
    expect(reset.code).toBe(0)
    expect(existsSync(stack.localDir)).toBe(false)
  }, 60_000)
})
