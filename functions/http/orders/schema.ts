// What callers may send to the orders API.
import * as z from '../../../lib/zod'
import { pageQuery } from '../../shared/cursor'

export const ORDER_STATUSES = ['pending', 'paid', 'shipped', 'cancelled'] as const

// PostgreSQL text cannot hold NUL; refuse it here rather than fail at the server. Nor can UTF-8
// hold half of a UTF-16 surrogate pair (JSON's "\ud800" alone): pg would store U+FFFD in its
// place, so what was acknowledged would not be what is read back, and two different references
// would collide.
const LONE_SURROGATE = /\p{Cs}/u
const text = (max: number) =>
  z.string().check(
    z.minLength(1),
    z.maxLength(max),
    z.refine((v) => !v.includes('\u0000'), 'must not contain NUL characters'),
    z.refine((v) => !LONE_SURROGATE.test(v), 'must be valid Unicode (no unpaired surrogate)'),
  )

const intBetween = (min: number, max: number) => z.int().check(z.gte(min), z.lte(max))

export const createOrderBody = z.builtOnFirstUse(() =>
  z.strictObject({
    reference: z.optional(text(64)),
    customer: text(200),
    lines: z
      .array(
        z.strictObject({
          sku: text(64),
          quantity: intBetween(1, 10_000),
          unitCents: intBetween(0, 1_000_000_000),
        }),
      )
      .check(z.minLength(1), z.maxLength(100)),
  }),
)

export const patchOrderBody = z.builtOnFirstUse(() =>
  z.strictObject({
    status: z.enum(ORDER_STATUSES),
    version: intBetween(1, 2_147_483_647),
  }),
)

// `reference`: the order with that reference, if any (how a caller checks a create whose answer it
// never got before sending it again).
export const listQuery = z.builtOnFirstUse(() =>
  z.extend(pageQuery(100, 20), { reference: z.optional(text(64)) }),
)

export const orderId = z.builtOnFirstUse(() => z.uuid())
