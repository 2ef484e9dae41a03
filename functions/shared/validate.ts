import { HttpError } from '../../lib'
import type * as z from '../../lib/zod'

// A field's name, or an unknown key the caller sent, is the caller's own text: a few of them, each
// cut short, so that an answer never repeats a large body back.
const MAX_ISSUES = 10
const MAX_PART = 80

const short = (text: string): string => (text.length > MAX_PART ? `${text.slice(0, MAX_PART)}…` : text)

/** Parses `value` or answers 400 naming the fields at fault (never echoing their values). */
export function validate<T extends z.ZodMiniType>(schema: T, value: unknown, what: string): z.infer<T> {
  const parsed = schema.safeParse(value)
  if (parsed.success) return parsed.data
  const problems = parsed.error.issues
    .slice(0, MAX_ISSUES)
    .map((i) => `${short(i.path.map(String).join('.')) || what}: ${short(i.message)}`)
    .join('; ')
  throw new HttpError(400, 'VALIDATION_FAILED', `Invalid ${what}: ${problems}`)
}
