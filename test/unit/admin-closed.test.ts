// Admin fails closed: with no key configured (neither ADMIN_API_KEY_SECRET_ID nor ADMIN_API_KEY),
// every admin route answers 401, whatever key a caller sends, and no handler runs.
import type { APIGatewayProxyEventV2 } from 'aws-lambda'

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
      const handlers = await import('../../functions/admin/handlers')
      for (const key of [undefined, '', 'guess', 'undefined']) {
        const res = (await handlers[name](event(key, '{"id":"acme"}'), {
          awsRequestId: 'r',
          functionName: 'admin',
          getRemainingTimeInMillis: () => 10_000,
        } as never)) as { statusCode: number; body: string }
        expect({ status: res.statusCode, code: JSON.parse(res.body).error?.code }).toEqual({
          status: 401,
          code: 'ADMIN_REQUIRED',
        })
      }
    },
  )
})
