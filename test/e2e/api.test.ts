// End to end: the local stack (embedded PostgreSQL, local Secrets Manager, serverless-offline) driven
// over HTTP, as a developer's curl would.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { localToken } from '../../scripts/local-jwt'
import { codeOf } from '../support/db'
import { type Stack, startStack } from '../support/stack'
import { type Answer, stackApi } from '../support/stack-api'

let stack: Stack

/** Polls `check` for up to five seconds. */
async function until(check: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + 5_000
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise((r) => setTimeout(r, 100))
  }
  return false
}

const { api, admin, superuser } = stackApi(() => stack)

/** GetSecretValue on the stack's local Secrets Manager, as the SDK would send it. */
const readLocalSecret = (secretId: string) =>
  fetch(stack.smUrl, {
    method: 'POST',
    headers: {
      'x-amz-target': 'secretsmanager.GetSecretValue',
      'content-type': 'application/x-amz-json-1.1',
    },
    body: JSON.stringify({ SecretId: secretId }),
  })

/** The error shape every failure must have: a code, a message, a request id, and nothing else. */
function expectError(answer: Answer, status: number, code: string) {
  expect({ status: answer.status, code: answer.body.error?.code }).toEqual({ status, code })
  expect(Object.keys(answer.body)).toEqual(['error'])
  expect(answer.body.error?.requestId).toEqual(expect.any(String))
  expect(answer.text).not.toMatch(/SELECT|INSERT|UPDATE|\bat .*\.(ts|js):\d+/)
}

const order = (customer: string, reference?: string) => ({
  customer,
  ...(reference ? { reference } : {}),
  lines: [
    { sku: 'SKU-1', quantity: 2, unitCents: 1250 },
    { sku: 'SKU-2', quantity: 1, unitCents: 500 },
  ],
})

beforeAll(async () => {
  // A short statement timeout lets the 504 row be reached with a held lock.
  stack = await startStack({ TENANT_POOLS_STATEMENT_TIMEOUT_MS: '1500', TENANT_CATALOG_TTL_MS: '300' })
}, 180_000)

afterAll(async () => {
  await stack?.stop()
})

describe('e2e: the orders API', () => {
  it('runs a full order lifecycle for two tenants, neither seeing the other’s data', async () => {
    // Create: three orders for acme, one for globex
    const created: string[] = []
    for (const c of ['Ada', 'Brian', 'Cleo']) {
      const res = await api('POST', '/orders', { tenant: 'acme', body: order(c) })
      expect(res.status).toBe(201)
      expect(res.body).toMatchObject({ customer: c, status: 'pending', totalCents: 3000, version: 1 })
      created.push(res.body.id as string)
    }
    const theirs = await api('POST', '/orders', { tenant: 'globex', body: order('Gus') })
    expect(theirs.status).toBe(201)

    // Read one, with its lines
    const one = await api('GET', `/orders/${created[0]}`, { tenant: 'acme' })
    expect(one.status).toBe(200)
    expect(one.body.lines).toEqual(order('x').lines)

    // Keyset pagination, newest first
    const page1 = await api('GET', '/orders?limit=2', { tenant: 'acme' })
    const page2 = await api('GET', `/orders?limit=2&cursor=${page1.body.nextCursor}`, { tenant: 'acme' })
    const ids = [...(page1.body.items as { id: string }[]), ...(page2.body.items as { id: string }[])].map(
      (o) => o.id,
    )
    expect(ids).toEqual([...created].reverse())
    expect(page2.body.nextCursor).toBeNull()

    // Isolation both ways
    expect((await api('GET', `/orders/${theirs.body.id}`, { tenant: 'acme' })).status).toBe(404)
    expect((await api('GET', `/orders/${created[0]}`, { tenant: 'globex' })).status).toBe(404)
    const globexList = await api('GET', '/orders', { tenant: 'globex' })
    expect((globexList.body.items as { customer: string }[]).map((o) => o.customer)).toEqual(['Gus'])

    // Status change with optimistic concurrency
    const paid = await api('PATCH', `/orders/${created[1]}`, {
      tenant: 'acme',
      body: { status: 'paid', version: 1 },
    })
    expect(paid.status).toBe(200)
    expect(paid.body).toMatchObject({ status: 'paid', version: 2 })
    expectError(
      await api('PATCH', `/orders/${created[1]}`, {
        tenant: 'acme',
        body: { status: 'shipped', version: 1 },
      }),
      409,
      'VERSION_CONFLICT',
    )

    // Stats: two queries in parallel
    const stats = await api('GET', '/orders/stats', { tenant: 'acme' })
    expect(stats.body).toEqual({ byStatus: { paid: 1, pending: 2 }, orders: 3, revenueCents: 9000 })

    // Soft delete
    expect((await api('DELETE', `/orders/${created[2]}`, { tenant: 'acme' })).status).toBe(204)
    expectError(await api('GET', `/orders/${created[2]}`, { tenant: 'acme' }), 404, 'NOT_FOUND')
    expectError(await api('DELETE', `/orders/${created[2]}`, { tenant: 'acme' }), 404, 'NOT_FOUND')
    const { rows } = await superuser((c) =>
      c.query('SELECT deleted_at IS NOT NULL AS deleted FROM tenant_acme.orders WHERE id = $1', [created[2]]),
    )
    expect(rows).toEqual([{ deleted: true }])
    expect((await api('GET', '/orders/stats', { tenant: 'acme' })).body).toMatchObject({ orders: 2 })
  })
})

describe('e2e: edge cases of the orders API', () => {
  it('pages through rows created within the same millisecond without skipping any', async () => {
    expect((await admin('POST', '/admin/tenants', { id: 'paging' })).status).toBe(201)
    await superuser((c) =>
      c.query(`INSERT INTO tenant_paging.orders (customer, total_cents, created_at) VALUES
                 ('a', 1, '2026-01-01 00:00:00.123400Z'), ('b', 1, '2026-01-01 00:00:00.123700Z'),
                 ('c', 1, '2026-01-01 00:00:00.123900Z')`),
    )
    const seen: string[] = []
    let cursor: unknown = null
    do {
      const page = await api('GET', `/orders?limit=1${cursor ? `&cursor=${cursor}` : ''}`, {
        tenant: 'paging',
      })
      expect(page.status).toBe(200)
      seen.push(...(page.body.items as { customer: string }[]).map((o) => o.customer))
      cursor = page.body.nextCursor
    } while (cursor)
    expect(seen).toEqual(['c', 'b', 'a'])
  })

  it('answers 400, not 500, to values the database could not take', async () => {
    const tampered = Buffer.from(JSON.stringify(['1', '-'.repeat(36)])).toString('base64url')
    expectError(await api('GET', `/orders?cursor=${tampered}`, { tenant: 'acme' }), 400, 'VALIDATION_FAILED')
    expectError(
      await api('POST', '/orders', { tenant: 'acme', body: { ...order('x'), customer: 'a\u0000b' } }),
      400,
      'VALIDATION_FAILED',
    )
    const created = await api('POST', '/orders', { tenant: 'acme', body: order('Big') })
    expectError(
      await api('PATCH', `/orders/${created.body.id}`, {
        tenant: 'acme',
        body: { status: 'paid', version: 2147483648 },
      }),
      400,
      'VALIDATION_FAILED',
    )
  })

  it('lets a deleted order’s reference be used again', async () => {
    const first = await api('POST', '/orders', { tenant: 'acme', body: order('R', 'REUSE-1') })
    expect((await api('DELETE', `/orders/${first.body.id}`, { tenant: 'acme' })).status).toBe(204)
    expect((await api('POST', '/orders', { tenant: 'acme', body: order('R', 'REUSE-1') })).status).toBe(201)
  })

  it('answers GET /orders/customers, written with Kysely, from the tenant’s own schema', async () => {
    expect((await admin('POST', '/admin/tenants', { id: 'kysely_demo' })).status).toBe(201)
    for (const customer of ['Zoe', 'Ann', 'Zoe']) {
      expect((await api('POST', '/orders', { tenant: 'kysely_demo', body: order(customer) })).status).toBe(
        201,
      )
    }
    expect((await api('POST', '/orders', { tenant: 'globex', body: order('Other') })).status).toBe(201)
    const answer = await api('GET', '/orders/customers', { tenant: 'kysely_demo' })
    expect(answer.status).toBe(200)
    // order(): 2 × 1250 + 500 cents each.
    expect(answer.body.items).toEqual([
      { customer: 'Ann', orders: 1, spentCents: 3000 },
      { customer: 'Zoe', orders: 2, spentCents: 6000 },
    ])
  })

  it('serves a tenant provisioned in another environment within about a second', async () => {
    expectError(await api('GET', '/orders', { tenant: 'newcomer' }), 404, 'TENANT_NOT_FOUND')
    expect((await admin('POST', '/admin/tenants', { id: 'newcomer' })).status).toBe(201)
    expect(
      await until(async () => (await api('GET', '/orders', { tenant: 'newcomer' })).status === 200),
    ).toBe(true)
  })
})

describe('e2e: every row of the error table', () => {
  it('400: a tenant id with SQL in it never reaches the database', async () => {
    expectError(
      await api('GET', '/orders', { tenant: "acme'; DROP TABLE orders; --" }),
      400,
      'INVALID_TENANT',
    )
    expectError(await api('GET', '/orders', { tenant: 'A'.repeat(5000) }), 400, 'INVALID_TENANT')
  })

  it('400: an invalid body, query or path parameter', async () => {
    const bad = await api('POST', '/orders', { tenant: 'acme', body: { customer: '', lines: [] } })
    expectError(bad, 400, 'VALIDATION_FAILED')
    expect(bad.body.error?.message).toMatch(/customer/)
    expectError(
      await api('POST', '/orders', { tenant: 'acme', body: { ...order('x'), extra: 1 } }),
      400,
      'VALIDATION_FAILED',
    )
    expectError(await api('GET', '/orders?limit=1000', { tenant: 'acme' }), 400, 'VALIDATION_FAILED')
    expectError(
      await api('GET', '/orders?cursor=bm90LWEtY3Vyc29y', { tenant: 'acme' }),
      400,
      'VALIDATION_FAILED',
    )
    expectError(await api('GET', '/orders/not-a-uuid', { tenant: 'acme' }), 400, 'VALIDATION_FAILED')
  })

  it('422: malformed JSON; 400: a missing body', async () => {
    expectError(await api('POST', '/orders', { tenant: 'acme', raw: '{"customer": ' }), 422, 'MALFORMED_JSON')
    expectError(
      await api('POST', '/orders', { tenant: 'acme', headers: { 'content-type': 'application/json' } }),
      400,
      'BODY_REQUIRED',
    )
    expectError(
      await api('PATCH', `/orders/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`, { tenant: 'acme' }),
      400,
      'BODY_REQUIRED',
    )
  })

  it('401: no tenant', async () => {
    // A valid token without a tenant_id claim: the function's own answer
    const noClaim = await api('GET', '/orders', {
      headers: { authorization: `Bearer ${await localToken(stack.localDir, undefined)}` },
    })
    expectError(noClaim, 401, 'TENANT_REQUIRED')
    // No token, or an expired one: the authorizer refuses, as API Gateway does
    expect((await api('GET', '/orders')).status).toBe(401)
    const expired = await localToken(stack.localDir, 'acme', -60)
    expect((await api('GET', '/orders', { headers: { authorization: `Bearer ${expired}` } })).status).toBe(
      401,
    )
    // A header cannot stand in for the token: the local stack trusts claims only, as deployed
    expect((await api('GET', '/orders', { headers: { 'x-tenant-id': 'acme' } })).status).toBe(401)
  })

  it('404: an unknown tenant', async () => {
    expectError(await api('GET', '/orders', { tenant: 'nobody_here' }), 404, 'TENANT_NOT_FOUND')
  })

  it('403: a suspended tenant, and back after resuming', async () => {
    expect((await admin('POST', '/admin/tenants', { id: 'initech' })).status).toBe(201)
    expect((await api('GET', '/orders', { tenant: 'initech' })).status).toBe(200)

    // Other environments (here: the orders functions) see it once their catalog cache expires.
    expect((await admin('PATCH', '/admin/tenants/initech', { status: 'suspended' })).status).toBe(200)
    const suspended = await until(
      async () => (await api('GET', '/orders', { tenant: 'initech' })).status === 403,
    )
    expect(suspended).toBe(true)
    expectError(await api('GET', '/orders', { tenant: 'initech' }), 403, 'TENANT_SUSPENDED')

    expect((await admin('PATCH', '/admin/tenants/initech', { status: 'active' })).status).toBe(200)
    expect(await until(async () => (await api('GET', '/orders', { tenant: 'initech' })).status === 200)).toBe(
      true,
    )
  })

  it('413: a 1 MB body', async () => {
    expectError(
      await api('POST', '/orders', {
        tenant: 'acme',
        raw: JSON.stringify({ customer: 'x'.repeat(1024 * 1024) }),
      }),
      413,
      'PAYLOAD_TOO_LARGE',
    )
  })

  it('409: a unique violation (the same reference twice)', async () => {
    expect((await api('POST', '/orders', { tenant: 'acme', body: order('Dup', 'REF-1') })).status).toBe(201)
    expectError(
      await api('POST', '/orders', { tenant: 'acme', body: order('Dup', 'REF-1') }),
      409,
      'CONFLICT',
    )
    // The same reference in another tenant is no conflict.
    expect((await api('POST', '/orders', { tenant: 'globex', body: order('Dup', 'REF-1') })).status).toBe(201)
  })

  it('503 with Retry-After: too many connections for the role', async () => {
    // Tenant traffic's login: the one the orders functions connect with.
    await superuser(async (c) => {
      await c.query('ALTER ROLE app_tenant CONNECTION LIMIT 0')
      // pg_terminate_backend only signals unless given a timeout: wait for every backend to exit, so
      // that none can still answer the request below.
      await c.query(
        `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = 'app_tenant'`,
      )
      const left = await c.query(`SELECT pid FROM pg_stat_activity WHERE usename = 'app_tenant'`)
      expect(left.rows).toEqual([])
    })
    try {
      const res = await api('GET', '/orders', { tenant: 'globex' })
      expectError(res, 503, 'DATABASE_UNAVAILABLE')
      expect(res.headers.get('retry-after')).toBe('1')
    } finally {
      await superuser((c) => c.query('ALTER ROLE app_tenant CONNECTION LIMIT -1'))
    }
    expect((await api('GET', '/orders', { tenant: 'globex' })).status).toBe(200)
  })

  it('504: a statement past the statement timeout', async () => {
    await superuser(async (c) => {
      await c.query('BEGIN')
      await c.query('LOCK TABLE tenant_globex.orders IN ACCESS EXCLUSIVE MODE')
      try {
        expectError(await api('GET', '/orders', { tenant: 'globex' }), 504, 'STATEMENT_TIMEOUT')
      } finally {
        await c.query('ROLLBACK')
      }
    })
  })

  it('admin: refused without the admin key, offline included', async () => {
    expectError(await api('GET', '/admin/tenants'), 401, 'ADMIN_REQUIRED')
    expectError(
      await api('GET', '/admin/tenants', { headers: { 'x-admin-key': 'guess' } }),
      401,
      'ADMIN_REQUIRED',
    )
    expectError(await api('POST', '/admin/tenants', { body: { id: 'x' } }), 401, 'ADMIN_REQUIRED')
  })
})

describe('e2e: the stack keeps its environments', () => {
  it('while files that are not the handlers’ sources appear in the checkout (a clone, a sandbox)', async () => {
    // A reload ends every function's worker: a call in flight then answers, 29 s later, a 200
    // carrying a Lambda timeout. The environment's own counter tells a reload: it starts again.
    const checkouts = async () => {
      const res = await admin('GET', '/admin/pools')
      expect(res.status).toBe(200)
      return (res.body.counters as { checkouts: number }).checkouts
    }
    let last = await checkouts()
    const dir = mkdtempSync(join(process.cwd(), '.private-checkout-'))
    try {
      mkdirSync(join(dir, 'lib'))
      writeFileSync(join(dir, 'lib', 'index.ts'), 'export const copy = 1\n')
      writeFileSync(join(dir, 'handler.js'), 'exports.handler = () => 1\n')
      // A rebuild and reload took 3 to 9 s here on a busy machine: watch for 15.
      const deadline = Date.now() + 15_000
      while (Date.now() < deadline) {
        const now = await checkouts()
        expect(now).toBeGreaterThan(last)
        last = now
        await new Promise((r) => setTimeout(r, 250))
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('e2e: the maintenance job', () => {
  it('runs through npm run job:maintenance against the local stack', async () => {
    const { execFile } = await import('node:child_process')
    const run = () =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = execFile(
          process.execPath,
          ['--import', 'tsx', 'scripts/invoke-maintenance.ts'],
          { env: { ...process.env, TENANT_POOLS_LOCAL_LAMBDA_PORT: String(stack.lambdaPort) } },
          (_err, stdout) => resolve({ code: child.exitCode, out: stdout }),
        )
      })
    const first = await run()
    expect(first.code).toBe(0)
    const summary = JSON.parse(first.out) as { processed: number; failed: number; passComplete: boolean }
    expect(summary).toMatchObject({ failed: 0, passComplete: true })
    expect(summary.processed).toBeGreaterThanOrEqual(2)
  }, 60_000)
})

describe('e2e: logs and metrics', () => {
  it('logs JSON with tenantId, request id and cold start, emits EMF metrics, and leaks no secret', async () => {
    // Two calls: a fresh tenant scope's first checkout, and a warm one
    await api('GET', '/orders', { tenant: 'acme' })
    await api('GET', '/orders', { tenant: 'acme' })
    const parsed = () =>
      stack
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>
          } catch {
            return {}
          }
        })
    const namesIn = (lines: Record<string, unknown>[]) =>
      lines.flatMap((l) =>
        (
          (l._aws as { CloudWatchMetrics?: { Metrics: { Name: string }[] }[] })?.CloudWatchMetrics ?? []
        ).flatMap((m) => m.Metrics.map((x) => x.Name)),
      )
    const wanted = ['ColdStart', 'ConnectionsOpened', 'ConnectionsReused', 'AcquireWait']
    // The function's output reaches the stack's a moment after the answer does.
    await until(async () => wanted.every((n) => namesIn(parsed()).includes(n)))
    const lines = parsed()
    expect(lines).toContainEqual(
      expect.objectContaining({
        tenantId: 'acme',
        function_request_id: expect.any(String),
        cold_start: expect.any(Boolean),
      }),
    )
    const metricNames = namesIn(lines)
    expect(metricNames).toEqual(
      expect.arrayContaining(['ColdStart', 'ConnectionsOpened', 'ConnectionsReused', 'AcquireWait']),
    )

    // The app role's password and the admin key live in the local Secrets Manager only.
    const secrets = await readLocalSecret('tenant-pools/local/master').then(
      (r) => r.json() as Promise<{ SecretString: string }>,
    )
    const { password } = JSON.parse(secrets.SecretString) as { password: string }
    expect(password.length).toBeGreaterThan(10)
    expect(stack.output()).not.toContain(password)
    expect(stack.output()).not.toContain(stack.adminKey)
  })
})

describe('e2e: tenant admin', () => {
  it('provisions idempotently, even when two calls race', async () => {
    const [a, b] = await Promise.all([
      admin('POST', '/admin/tenants', { id: 'umbrella' }),
      admin('POST', '/admin/tenants', { id: 'umbrella' }),
    ])
    expect([a.status, b.status].sort()).toEqual([200, 201])
    expect((await admin('POST', '/admin/tenants', { id: 'umbrella' })).status).toBe(200)
    const { rows } = await superuser((c) =>
      c.query(`SELECT version FROM tenant_umbrella.schema_migrations ORDER BY version`),
    )
    expect(rows).toEqual([{ version: '0001_orders' }, { version: '0002_reference_live' }])
  })

  it('lists tenants, deletes one softly, and shows this environment’s pools', async () => {
    await admin('POST', '/admin/tenants', { id: 'hooli' })
    // A page at a time (keyset, as /orders): every tenant once, the last page with no cursor.
    const listed: string[] = []
    let cursor: unknown = null
    do {
      const list = await admin('GET', `/admin/tenants?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
      expect(list.status).toBe(200)
      expect((list.body.items as unknown[]).length).toBeLessThanOrEqual(2)
      listed.push(...(list.body.items as { id: string }[]).map((t) => t.id))
      cursor = list.body.nextCursor
    } while (cursor)
    expect(listed).toEqual(expect.arrayContaining(['acme', 'globex', 'hooli']))
    expect(new Set(listed).size).toBe(listed.length)
    expectError(await admin('GET', '/admin/tenants?cursor=bm90IGEgY3Vyc29y'), 400, 'VALIDATION_FAILED')

    expect((await admin('DELETE', '/admin/tenants/hooli')).status).toBe(200)
    expectError(await api('GET', '/orders', { tenant: 'hooli' }), 404, 'TENANT_NOT_FOUND')
    expectError(await admin('DELETE', '/admin/tenants/hooli'), 404, 'TENANT_NOT_FOUND')
    const { rows } = await superuser((c) => c.query(`SELECT status FROM tenants WHERE id = 'hooli'`))
    expect(rows).toEqual([{ status: 'deleted' }])

    const pools = await admin('GET', '/admin/pools')
    expect(pools.status).toBe(200)
    expect(pools.body).toMatchObject({ budget: { limit: 4 }, counters: expect.any(Object) })
  })

  it('gives a tenant its own role and secret on request; its pool then logs in as that role', async () => {
    const res = await admin('POST', '/admin/tenants', { id: 'wayne', role: true })
    expect(res.status).toBe(201)
    expect(res.body).toMatchObject({ role: 'tenant_wayne', secretId: 'tenant-pools/local/tenants/wayne' })
    // Two environments racing on the same tenant's role both succeed.
    const racing = await Promise.all([
      admin('POST', '/admin/tenants', { id: 'wayne', role: true }),
      admin('POST', '/admin/tenants', { id: 'wayne', role: true }),
    ])
    expect(racing.map((r) => r.status)).toEqual([200, 200])

    expect((await api('POST', '/orders', { tenant: 'wayne', body: order('Bruce') })).status).toBe(201)
    const { rows } = await superuser((c) =>
      c.query(`SELECT DISTINCT usename FROM pg_stat_activity WHERE application_name = 'tenant-pools:wayne'`),
    )
    expect(rows).toEqual([{ usename: 'tenant_wayne' }])
    // The role reaches its own schema only.
    const denied = await superuser(async (c) => {
      await c.query('SET ROLE tenant_wayne')
      return c.query('SELECT 1 FROM tenant_acme.orders').catch((e: { code: string }) => e.code)
    })
    expect(denied).toBe('42501')
  })

  it('logs tenant traffic in as a role that owns nothing, and never as the schema owner', async () => {
    expect((await api('GET', '/orders', { tenant: 'acme' })).status).toBe(200)
    const { rows } = await superuser((c) =>
      c.query(
        `SELECT DISTINCT usename FROM pg_stat_activity
         WHERE application_name LIKE 'tenant-pools:acme%' AND backend_type = 'client backend'`,
      ),
    )
    expect(rows).toEqual([{ usename: 'app_tenant' }])
    const owned = await superuser((c) =>
      c.query(
        `SELECT n.nspname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE r.rolname = 'app_tenant'`,
      ),
    )
    expect(owned.rows).toEqual([])
    // What an injected statement would try, as that role: each refused for want of the right.
    const tried = await superuser(async (c) => {
      await c.query('SET ROLE app_tenant')
      const codes: Array<string | undefined> = []
      for (const q of [
        'ALTER TABLE tenant_acme.orders DISABLE TRIGGER USER',
        'CREATE TABLE tenant_acme.stray (x int)',
        'TRUNCATE tenant_acme.order_lines',
        'DROP TABLE tenant_acme.order_lines',
        'ALTER TABLE tenant_acme.orders ADD COLUMN x int',
        `INSERT INTO tenant_acme.schema_migrations (version) VALUES ('9999_fake')`,
        `UPDATE tenants SET cluster = 'main'`,
      ]) {
        codes.push(await codeOf(c.query(q)))
      }
      return codes
    })
    expect(tried).toEqual(Array(7).fill('42501'))
  })

  it('refuses a tenant whose own secret is missing with 503 CREDENTIALS_UNAVAILABLE, never another login', async () => {
    expect((await admin('POST', '/admin/tenants', { id: 'kent', role: true })).status).toBe(201)
    // The secret goes before the tenant's first request: no environment holds its password.
    const deleted = await fetch(stack.smUrl, {
      method: 'POST',
      headers: {
        'x-amz-target': 'secretsmanager.DeleteSecret',
        'content-type': 'application/x-amz-json-1.1',
      },
      body: JSON.stringify({ SecretId: 'tenant-pools/local/tenants/kent', ForceDeleteWithoutRecovery: true }),
    })
    expect(deleted.status).toBe(200)

    for (const [method, path] of [
      ['GET', '/orders'],
      ['POST', '/orders'],
    ] as const) {
      const res = await api(method, path, {
        tenant: 'kent',
        body: method === 'POST' ? order('Clark') : undefined,
      })
      expectError(res, 503, 'CREDENTIALS_UNAVAILABLE')
      expect(res.headers.get('retry-after')).toBe('1')
    }
    const { rows } = await superuser((c) =>
      c.query(`SELECT usename FROM pg_stat_activity WHERE application_name = 'tenant-pools:kent'`),
    )
    expect(rows).toEqual([])
    const { rows: written } = await superuser((c) =>
      c.query('SELECT count(*)::int AS n FROM tenant_kent.orders'),
    )
    expect(written).toEqual([{ n: 0 }])
  })

  it('deprovisioning revokes and drops the tenant role and deletes its secret', async () => {
    expect((await admin('POST', '/admin/tenants', { id: 'stark', role: true })).status).toBe(201)
    expect((await api('GET', '/orders', { tenant: 'stark' })).status).toBe(200)

    const res = await admin('DELETE', '/admin/tenants/stark')

    expect(res.body).toMatchObject({ status: 'deleted', roleDropped: 'tenant_stark' })
    const { rows } = await superuser((c) => c.query(`SELECT 1 FROM pg_roles WHERE rolname = 'tenant_stark'`))
    expect(rows).toEqual([])
    // Scheduled for deletion, as AWS does: its value refused until it is restored.
    const secret = await readLocalSecret('tenant-pools/local/tenants/stark')
    expect(secret.status).toBe(400)
    expect(((await secret.json()) as { __type: string }).__type).toBe('InvalidRequestException')
  })

  it('rejects an invalid tenant id with 400', async () => {
    expectError(
      await admin('POST', '/admin/tenants', { id: "x'; DROP SCHEMA public; --" }),
      400,
      'VALIDATION_FAILED',
    )
  })
})
