// validate() answers a caller's mistake with 400 VALIDATION_FAILED naming the fields at fault: never
// their values, at most ten problems, and each name (an unknown key is the caller's own text) cut
// short, so a large body is never repeated back.

import { validate } from '../../../functions/shared/validate'
import { HttpError } from '../../../lib'
import * as z from '../../../lib/zod'

const schema = z.strictObject({ customer: z.string().check(z.maxLength(5)), n: z.int() })

const refusal = (value: unknown): HttpError => {
  try {
    validate(schema, value, 'body')
  } catch (err) {
    if (err instanceof HttpError) return err
    throw err
  }
  throw new Error('validate accepted it')
}

describe('Function: validate', () => {
  it('gives back what parses', () => {
    expect(validate(schema, { customer: 'ab', n: 1 }, 'body')).toEqual({ customer: 'ab', n: 1 })
  })

  it('names the fields at fault, never their values', () => {
    const err = refusal({ customer: 'secret-value', n: 'also-secret' })
    expect(err).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' })
    expect(err.message).toMatch(/customer/)
    expect(err.message).toMatch(/\bn\b/)
    expect(err.message).not.toMatch(/secret/)
  })

  it('names a short unknown key in full', () => {
    expect(refusal({ customer: 'a', n: 1, colour: 'red' }).message).toMatch(/colour/)
  })

  it('cuts short an unknown key of 60,000 characters, and says at most ten problems', () => {
    const long = 'k'.repeat(60_000)
    const many = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`${long}${i}`, i]))
    const err = refusal({ customer: 1, n: 'x', ...many })
    expect(err.message.length).toBeLessThan(2_000)
    expect(err.message).toMatch(/k…/)
  })
})
