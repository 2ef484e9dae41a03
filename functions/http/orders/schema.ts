// What callers may send to the orders API.
import { z } from 'zod'

export const ORDER_STATUSES = ['pending', 'paid', 'shipped', 'cancelled'] as const

// PostgreSQL text cannot hold NUL; refuse it here rather than fail at the server.
const text = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .refine((v) => !v.includes('\u0000'), 'must not contain NUL characters')

export const createOrderBody = z
  .object({
    reference: text(64).optional(),
    customer: text(200),
    lines: z
      .array(
        z
          .object({
            sku: text(64),
            quantity: z.number().int().min(1).max(10_000),
            unitCents: z.number().int().min(0).max(1_000_000_000),
          })
          .strict(),
      )
      .min(1)
      .max(100),
  })
  .strict()

export const patchOrderBody = z
  .object({
    status: z.enum(ORDER_STATUSES),
    version: z.number().int().min(1).max(2_147_483_647),
  })
  .strict()

export const listQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z
      .string()
      .max(200)
      .regex(/^[A-Za-z0-9_-]+$/)
      .optional(),
  })
  .strict()

export const orderId = z.uuid()
