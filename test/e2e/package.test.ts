// `serverless package` works with no AWS account and no network, and the template holds what a
// deployment needs. Wrapped in a timeout: it hangs after an esbuild error instead of exiting.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

interface Resource {
  Type: string
  Properties: Record<string, unknown>
}

describe('serverless package', () => {
  let resources: Record<string, Resource>

  beforeAll(() => {
    const out = mkdtempSync(join(tmpdir(), 'tenant-pools-package-'))
    const run = spawnSync(
      process.execPath,
      [require.resolve('serverless/bin/serverless.js'), 'package', '--stage', 'ci', '--package', out],
      {
        encoding: 'utf8',
        timeout: 150_000,
        // No AWS credentials at all: packaging must not need them.
        env: { PATH: process.env.PATH, HOME: process.env.HOME, CI: 'true' },
      },
    )
    if (run.status !== 0)
      throw new Error(`serverless package failed (${run.status ?? run.signal}):\n${run.stdout}${run.stderr}`)
    const template = JSON.parse(readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8'))
    resources = template.Resources
  }, 180_000)

  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type)

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
