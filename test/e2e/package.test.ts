// `serverless package` works with no AWS account and no network, each function gets its own small
// bundle, and the template holds what a deployment needs.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Packaged, packageFunctions } from '../../scripts/package-functions'

type Resource = Packaged['template']['Resources'][string]

const KB = 1024

describe('serverless package', () => {
  let packaged: Packaged
  let resources: Record<string, Resource>

  beforeAll(async () => {
    packaged = await packageFunctions(mkdtempSync(join(tmpdir(), 'tenant-pools-package-')))
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
        'AdminTenantsPatch',
        'Health',
        'Maintenance',
        'OrdersCreate',
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
    expect(new Set(keys).size).toBe(13)
    for (const fn of packaged.functions) {
      const bundle = fn.bundlePath.slice(
        fn.bundlePath.indexOf('/extracted/') + `/extracted/${fn.name}/`.length,
      )
      expect(Object.keys(fn.files).sort()).toEqual([bundle, `${bundle}.map`])
    }
  })

  it('ships minified bundles under the size targets, with source maps that only --enable-source-maps reads', () => {
    for (const fn of packaged.functions) {
      expect(fn.bundleBytes).toBeGreaterThan(10 * KB)
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
    const empty = mkdtempSync(join(tmpdir(), 'tenant-pools-load-'))
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

  it('grants secretsmanager:GetSecretValue on the configured secrets only, and CreateSecret on tenant secrets', () => {
    const [, role] = ofType('AWS::IAM::Role')[0] as [string, Resource]
    const statements = (
      role.Properties.Policies as {
        PolicyDocument: { Statement: { Action: string[]; Resource: unknown }[] }
      }[]
    ).flatMap((p) => p.PolicyDocument.Statement)
    const secrets = statements.filter((s) => s.Action.some((a) => a.startsWith('secretsmanager:')))
    expect(secrets).toEqual([
      expect.objectContaining({
        Action: ['secretsmanager:CreateSecret', 'secretsmanager:DeleteSecret'],
        Resource: 'arn:aws:secretsmanager:eu-west-1:000000000000:secret:app/tenants/*',
      }),
      expect.objectContaining({
        Action: ['secretsmanager:GetSecretValue'],
        Resource: [
          'arn:aws:secretsmanager:eu-west-1:000000000000:secret:app/master-AbCdEf',
          'arn:aws:secretsmanager:eu-west-1:000000000000:secret:app/admin-key-AbCdEf',
          'arn:aws:secretsmanager:eu-west-1:000000000000:secret:app/tenants/*',
        ],
      }),
    ])
    expect(JSON.stringify(secrets)).not.toContain('"*"')
  })

  it('routes the tenant API through the JWT authorizer and leaves health open', () => {
    const routes = ofType('AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties)
    const byKey = Object.fromEntries(routes.map((r) => [r.RouteKey as string, r.AuthorizationType]))
    expect(byKey['GET /orders']).toBe('JWT')
    expect(byKey['POST /orders']).toBe('JWT')
    expect(byKey['GET /health']).toBeUndefined()
  })
})
