import middy from '@middy/core'
import type { APIGatewayProxyEventV2 } from 'aws-lambda'
import { bodyLimit } from '../../lib'

const LIMIT = 64 * 1024
const run = (body: string | null | undefined, isBase64Encoded = false, maxBytes?: number) =>
  middy<APIGatewayProxyEventV2>()
    .use(bodyLimit(maxBytes === undefined ? {} : { maxBytes }))
    .handler(async () => 'handled')({ body, isBase64Encoded } as APIGatewayProxyEventV2, {} as never)

describe('Middleware: bodyLimit', () => {
  it('takes a body of exactly 64 KB by default, and refuses one byte more with 413', async () => {
    await expect(run('x'.repeat(LIMIT))).resolves.toBe('handled')
    await expect(run('x'.repeat(LIMIT + 1))).rejects.toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE' })
  })

  it('counts bytes, not characters, and decodes a base64 body before counting', async () => {
    // 'é' is two bytes in UTF-8: half the characters reach the limit.
    await expect(run('é'.repeat(LIMIT / 2))).resolves.toBe('handled')
    await expect(run(`${'é'.repeat(LIMIT / 2)}x`)).rejects.toMatchObject({ status: 413 })
    const raw = Buffer.alloc(LIMIT + 1, 1).toString('base64')
    await expect(run(raw, true)).rejects.toMatchObject({ status: 413 })
    await expect(run(Buffer.alloc(LIMIT, 1).toString('base64'), true)).resolves.toBe('handled')
  })

  it('refuses a missing or empty body with 400, and honours its own limit', async () => {
    await expect(run(undefined)).rejects.toMatchObject({ status: 400, code: 'BODY_REQUIRED' })
    await expect(run('')).rejects.toMatchObject({ status: 400, code: 'BODY_REQUIRED' })
    await expect(run('x'.repeat(11), false, 10)).rejects.toMatchObject({ status: 413 })
  })

  it('refuses a null body with 400 too (a test harness or another trigger may give null)', async () => {
    await expect(run(null)).rejects.toMatchObject({ status: 400, code: 'BODY_REQUIRED' })
  })

  it('tells the caller what is wrong: no body, or its size and the limit', async () => {
    await expect(run(undefined)).rejects.toMatchObject({ message: 'This request needs a JSON body' })
    await expect(run('x'.repeat(11), false, 10)).rejects.toMatchObject({
      message: 'The body is 11 bytes; the limit is 10',
    })
  })
})
