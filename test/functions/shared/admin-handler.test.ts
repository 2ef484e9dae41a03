// Admin fails closed: with no key configured (neither ADMIN_API_KEY_SECRET_ID nor ADMIN_API_KEY),
// every admin route answers 401, whatever key a caller sends, and no handler runs.
import type { APIGatewayProxyEventV2 } from 'aws-lambda'
import { captureOutput } from '../../support/captured-output'

const event = (key?: string, body?: string) =>
  ({
    headers: key === undefined ? {} : { 'x-admin-key': key },
    body,
    pathParameters: { id: 'acme' },
    requestContext: { http: { method: 'GET', path: '/admin/tenants' } },
  }) as unknown as APIGatewayProxyEventV2

describe('Admin with no key configured', () => {
  const saved = { ...process.env }
  beforeEach(() => {
    delete process.env.ADMIN_API_KEY
    delete process.env.ADMIN_API_KEY_SECRET_ID
    jest.resetModules()
  })
  afterAll(() => {
    process.env = saved
  })

  it.each(['list', 'create', 'patch', 'remove', 'move', 'poolStats'] as const)(
    'refuses %s with 401, with or without a key sent',
    async (name) => {
      const handlers = await import('../../../functions/admin/handlers')
      const keys = [undefined, '', 'guess', 'undefined']
      const output = captureOutput()
      const answers: Array<{ status: number; code: unknown }> = []
      try {
        for (const key of keys) {
          const res = (await handlers[name](event(key, '{"id":"acme"}'), {
            awsRequestId: 'r',
            functionName: 'admin',
            getRemainingTimeInMillis: () => 10_000,
          } as never)) as { statusCode: number; body: string }
          answers.push({ status: res.statusCode, code: JSON.parse(res.body).error?.code })
        }
      } finally {
        output.restore()
      }
      expect(answers).toEqual(keys.map(() => ({ status: 401, code: 'ADMIN_REQUIRED' })))
      // The operator is told why, at ERROR, on each refused call; and each refusal is logged.
      const logs = output.json()
      expect(
        logs.filter(
          (l) => l.level === 'ERROR' && l.message === 'No admin key is configured: refusing every admin call',
        ),
      ).toHaveLength(keys.length)
      expect(
        logs.filter((l) => l.message === 'request rejected' && l.code === 'ADMIN_REQUIRED'),
      ).toHaveLength(keys.length)
      // A refused call recorded no metric: nothing is published for it, not even Powertools'
      // plain-text warning about an empty publish. Every line printed is a structured log.
      expect(output.lines.filter((l) => !l.startsWith('{'))).toEqual([])
    },
  )
})
