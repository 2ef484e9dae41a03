import { HttpError } from '../../lib'
import type * as z from '../../lib/zod'

/** Parses `value` or answers 400 naming the fields at fault (never echoing their values). */
export function validate<T extends z.ZodMiniType>(schema: T, value: unknown, what: string): z.infer<T> {
  const parsed = schema.safeParse(value)
  if (parsed.success) return parsed.data
  const problems = parsed.error.issues
    .slice(0, 10)
    .map((i) => `${i.path.join('.') || what}: ${i.message}`)
    .join('; ')
  throw new HttpError(400, 'VALIDATION_FAILED', `Invalid ${what}: ${problems}`)
}
