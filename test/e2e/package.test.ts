// `serverless package` works with no AWS account and no network, each function gets its own small
// bundle, and the template holds what a deployment needs.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Packaged, packageFunctions } from '../../scripts/package-functions'

type Resource = Packaged['template']['Resources'][string]

const KB = 1024

describe('serverless package', () => {
  let packaged: Packaged
  let resources: Record<string, Resource>

  const made: string[] = []
  const tempDir = (prefix: string) => {
    const dir = mkdtempSync(join(tmpdir(), prefix))
    made.push(dir)
    return dir
  }
  afterAll(() => {
    for (const dir of made) rmSync(dir, { recursive: true, force: true })
  })

  beforeAll(async () => {
    packaged = await packageFunctions(tempDir('tenant-pools-package-'))
    resources = packaged.template.Resources
  }, 180_000)

  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type)
  const bundleOf = (name: string) => {
    const fn = packaged.functions.find((f) => f.name === name)
    if (!fn) throw new Error(`no function ${name}`)
    return { fn, text: readFileSync(fn.bundlePath, 'utf8') }
  }

  it('contains every function, on nodejs22.x', () => {
    const fns = ofType('AWS::Lambda::Function')
    expect(fns.map(([name]) => name).sort()).toEqual(
      [
        'AdminPools',
        'AdminTenantsCreate',
        'AdminTenantsDelete',
        'AdminTenantsList',
        'AdminTenantsMove',
        'AdminTenantsPatch',
        'Health',
        'Maintenance',
        'OrdersCreate',
        'OrdersCustomers',
        'OrdersDelete',
        'OrdersGet',
        'OrdersList',
        'OrdersPatch',
        'OrdersStats',
      ].map((n) => `${n}LambdaFunction`),
    )
    for (const [, fn] of fns) expect(fn.Properties.Runtime).toBe('nodejs22.x')
  })

  it('gives every function its own artifact holding only its handler bundle and source map', () => {
    const keys = ofType('AWS::Lambda::Function').map(
      ([, r]) => (r.Properties.Code as { S3Key: string }).S3Key,
    )
    expect(new Set(keys).size).toBe(15)
    for (const fn of packaged.functions) {
      const bundle = fn.bundlePath.slice(
        fn.bundlePath.indexOf('/extracted/') + `/extracted/${fn.name}/`.length,
      )
      expect(Object.keys(fn.files).sort()).toEqual([bundle, `${bundle}.map`])
    }
  })

  it('ships minified bundles under the size targets, with source maps that only --enable-source-maps reads', () => {
    for (const fn of packaged.functions) {
      // A real bundle, except /health, which imports nothing but its answer.
      expect(fn.bundleBytes).toBeGreaterThan(fn.name === 'health' ? 100 : 10 * KB)
      expect(fn.bundleBytes).toBeLessThanOrEqual(400 * KB)
    }
    const { fn, text } = bundleOf('ordersCreate')
    expect(fn.bundleBytes).toBeLessThan(300 * KB)
    // Minified: a handful of very long lines, not tens of thousands of short ones.
    expect(text.split('\n').length).toBeLessThan(50)
    expect(text.trimEnd().endsWith('//# sourceMappingURL=handlers.js.map')).toBe(true)
    // NODE_OPTIONS is empty unless a stage asks for source maps.
    const [, create] = ofType('AWS::Lambda::Function').find(([n]) => n === 'OrdersCreateLambdaFunction') as [
      string,
      Resource,
    ]
    expect(
      (create.Properties.Environment as { Variables: Record<string, string> }).Variables.NODE_OPTIONS,
    ).toBe('')
  })

  it("carries no other function's code, no AWS SDK and no zod locale in the orders bundle", () => {
    const { text } = bundleOf('ordersCreate')
    // Strings that only admin code holds: role provisioning, its secret, the admin key check.
    for (const adminOnly of [
      'tenant-pools:role:',
      'ROLE_NOT_CONFIGURED',
      'ADMIN_REQUIRED',
      'CreateSecretCommand',
    ])
      expect(text).not.toContain(adminOnly)
    // The SDK is required lazily by name and not bundled (its user agent string would be there).
    expect(text).toContain('@aws-sdk/client-secrets-manager')
    expect(text).not.toContain('aws-sdk-js')
    // zod's other locales (German's message; esbuild escapes the umlaut of "Ungültige").
    expect(text).not.toContain('Eingabe: erwartet')
    // …while the admin bundle does carry what the orders one must not.
    const admin = bundleOf('adminTenantsCreate').text
    expect(admin).toContain('tenant-pools:role:')
    expect(admin).toContain('ADMIN_REQUIRED')
  })

  it('loads every packaged handler in a fresh process with no AWS credentials, no database and no network', () => {
    const empty = tempDir('tenant-pools-load-')
    const guard = join(__dirname, '..', 'support', 'no-network.cjs')
    for (const fn of packaged.functions) {
      const exported = fn.handler.slice(fn.handler.lastIndexOf('.') + 1)
      const run = spawnSync(
        process.execPath,
        [
          '--require',
          guard,
          '-e',
          // Loaded as Lambda's init does; then a moment for anything the load scheduled to run.
          `const m = require(${JSON.stringify(fn.bundlePath)}); setTimeout(() => console.log(typeof m[${JSON.stringify(exported)}]), 200)`,
        ],
        // An empty folder with no node_modules above it: nothing the bundle needs at load may live outside it.
        { cwd: empty, encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 20_000 },
      )
      expect({ name: fn.name, status: run.status, stderr: run.stderr }).toEqual({
        name: fn.name,
        status: 0,
        stderr: '',
      })
      const lines = run.stdout.trim().split('\n')
      expect(lines[0]).toBe('function')
      expect(JSON.parse(lines.at(-1) as string)).toEqual({ networkAttempts: [] })
    }
  })

  it('contains the maintenance schedule rule', () => {
    const rules = ofType('AWS::Events::Rule')
    expect(rules).toHaveLength(1)
    expect(rules[0]?.[1].Properties).toMatchObject({ ScheduleExpression: 'rate(1 hour)', State: 'ENABLED' })
  })

  // Every statement of a role's inline policies, actions as a list.
  const statementsOf = (role: string) =>
    (
      (resources[role]?.Properties.Policies ?? []) as {
        PolicyDocument: { Statement: { Action: string | string[]; Resource: string | string[] }[] }
      }[]
    ).flatMap((p) =>
      p.PolicyDocument.Statement.map((st) => ({
        actions: ([] as string[]).concat(st.Action),
        resources: ([] as string[]).concat(st.Resource),
      })),
    )
  const secret = (name: string) => `arn:aws:secretsmanager:eu-west-1:000000000000:secret:${name}`

  const roleOf = (fn: string) =>
    ((resources[`${fn}LambdaFunction`] as Resource).Properties.Role as { 'Fn::GetAtt': string[] })[
      'Fn::GetAtt'
    ][0]
  const functionNames = () =>
    ofType('AWS::Lambda::Function').map(([name]) => name.replace(/LambdaFunction$/, ''))
  const envOf = (fn: string) =>
    (
      (resources[`${fn}LambdaFunction`] as Resource).Properties.Environment as {
        Variables: Record<string, string>
      }
    ).Variables

  it('gives each function group its own least-privilege role', () => {
    const expected: Record<string, string> = {
      Health: 'HealthRole',
      Maintenance: 'MaintenanceRole',
      AdminTenantsList: 'AdminReadRole',
      AdminPools: 'AdminReadRole',
      AdminTenantsPatch: 'AdminWriteRole',
      AdminTenantsMove: 'AdminWriteRole',
      AdminTenantsCreate: 'AdminTenantsRole',
      AdminTenantsDelete: 'AdminTenantsRole',
    }
    for (const f of functionNames()) {
      expect({ f, role: roleOf(f) }).toEqual({ f, role: expected[f] ?? 'TenantApiRole' })
    }
    const owner = secret('app/master-AbCdEf')
    const traffic = secret('app/tenant-traffic-AbCdEf')
    const adminKey = secret('app/admin-key-AbCdEf')
    const tenants = secret('app/tenants/*')
    const read = (...resources: string[]) => ({ actions: ['secretsmanager:GetSecretValue'], resources })
    // Health: no secret at all.
    expect(statementsOf('HealthRole')).toEqual([])
    // The tenant API: tenant traffic's login and the tenants' own. Never the owner's, no admin key.
    expect(statementsOf('TenantApiRole')).toEqual([read(traffic, tenants)])
    // Admin's read-only routes: the admin key and tenant traffic's login, which changes nothing.
    expect(statementsOf('AdminReadRole')).toEqual([read(traffic, adminKey)])
    // Admin's writes that touch no tenant secret: the owner's login and the admin key.
    expect(statementsOf('AdminWriteRole')).toEqual([read(owner, adminKey)])
    // Creating and deleting tenants: and the tenants' own secrets, which only they write (and delete).
    expect(statementsOf('AdminTenantsRole')).toEqual([
      read(owner, adminKey, tenants),
      {
        actions: [
          'secretsmanager:CreateSecret',
          'secretsmanager:DeleteSecret',
          'secretsmanager:DescribeSecret',
          'secretsmanager:RestoreSecret',
        ],
        resources: [tenants],
      },
    ])
    expect(statementsOf('MaintenanceRole')).toEqual([read(owner)])
    expect(JSON.stringify(ofType('AWS::IAM::Role'))).not.toContain('"*"')
  })

  it('gives each function the login its role may read, and per-tenant secrets only where it reads them', () => {
    const readable = (role: string) =>
      statementsOf(role)
        .filter((st) => st.actions.includes('secretsmanager:GetSecretValue'))
        .flatMap((st) => st.resources)
    const covers = (patterns: string[], arn: string) =>
      patterns.some((p) => (p.endsWith('*') ? arn.startsWith(p.slice(0, -1)) : p === arn))
    const ownerFunctions = [
      'AdminTenantsPatch',
      'AdminTenantsMove',
      'AdminTenantsCreate',
      'AdminTenantsDelete',
      'Maintenance',
    ]
    for (const f of functionNames().filter((name) => name !== 'Health')) {
      const env = envOf(f)
      const role = roleOf(f) as string
      const login = env.TENANT_POOLS_SECRET_ID as string
      expect({ f, login }).toEqual({
        f,
        login: secret(ownerFunctions.includes(f) ? 'app/master-AbCdEf' : 'app/tenant-traffic-AbCdEf'),
      })
      expect({ f, readable: covers(readable(role), login) }).toEqual({ f, readable: true })
      // A function that may look up per-tenant secrets can read them; one that cannot is not told to.
      const pattern = env.TENANT_POOLS_TENANT_SECRET_PATTERN ?? ''
      const example = secret(pattern.replace('{tenantId}', 'acme'))
      expect({ f, tenantSecrets: pattern !== '' && covers(readable(role), example) }).toEqual({
        f,
        tenantSecrets: pattern !== '',
      })
      if (env.ADMIN_API_KEY_SECRET_ID) expect(covers(readable(role), env.ADMIN_API_KEY_SECRET_ID)).toBe(true)
      // The tenant API falls back from a missing tenant secret to tenant traffic's login only. (Admin's
      // tenant functions fall back to the owner's, which their DDL needs; a tenant with a role of its
      // own never falls back.)
      if (role === 'TenantApiRole') {
        expect({ f, fallback: env.TENANT_POOLS_TENANT_SECRET_FALLBACK }).toEqual({ f, fallback: 'true' })
      }
    }
  })

  it('caps the fleet: reserved concurrency per function group, the job at 1, and stage throttling', () => {
    const reserved = Object.fromEntries(
      ofType('AWS::Lambda::Function').map(([name, r]) => [
        name.replace(/LambdaFunction$/, ''),
        r.Properties.ReservedConcurrentExecutions,
      ]),
    )
    expect(reserved).toMatchObject({
      Maintenance: 1,
      Health: 5,
      OrdersCreate: 10,
      OrdersList: 10,
      AdminPools: 2,
    })
    expect(Object.values(reserved).every((n) => typeof n === 'number' && n > 0)).toBe(true)
    const [, stage] = ofType('AWS::ApiGatewayV2::Stage')[0] as [string, Resource]
    expect(stage.Properties.DefaultRouteSettings).toEqual({
      ThrottlingRateLimit: 200,
      ThrottlingBurstLimit: 100,
    })
  })

  it('builds /health without the database or any secret', () => {
    const { text } = bundleOf('health')
    expect(text).not.toMatch(/pg_|search_path|secretsmanager|GetSecretValue/i)
  })

  it('routes the tenant API through the JWT authorizer and leaves health open', () => {
    const routes = ofType('AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties)
    const byKey = Object.fromEntries(routes.map((r) => [r.RouteKey as string, r.AuthorizationType]))
    expect(byKey['GET /orders']).toBe('JWT')
    expect(byKey['POST /orders']).toBe('JWT')
    expect(byKey['GET /health']).toBeUndefined()
  })
})
