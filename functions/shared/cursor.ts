// The paging of the list routes (GET /orders, GET /admin/tenants): their query, and their opaque
// keyset cursors: the sort key of a page's last row, as JSON, base64url encoded. One that does not decode to a key this API made is the
// caller's mistake: a 400, never a 500.
import { HttpError } from '../../lib'
import * as z from '../../lib/zod'

/**
 * A list route's query: `limit` (decimal digits only, 1 to `max`, `fallback` when absent) and
 * `cursor` (base64url as encodeCursor makes it); any other key is a 400.
 */
export const pageQuery = (max: number, fallback: number) =>
  z.strictObject({
    limit: z._default(
      z.pipe(
        // Not Number(): it would take "0x10", "1e1" or " 5 " too.
        z.string().check(z.regex(/^\d{1,6}$/, 'must be a whole number')),
        z.pipe(z.transform(Number), z.int().check(z.gte(1), z.lte(max))),
      ),
      fallback,
    ),
    cursor: z.optional(z.string().check(z.maxLength(200), z.regex(/^[A-Za-z0-9_-]+$/))),
  })

/** The cursor naming `key`, the last row's sort key. */
export const encodeCursor = (key: string[]): string => Buffer.from(JSON.stringify(key)).toString('base64url')

/**
 * The key `cursor` names, as `read` takes it from the decoded JSON (undefined, or a throw: not one
 * this API made). Throws a 400 VALIDATION_FAILED for anything else.
 */
export function decodeCursor<K>(cursor: string, read: (decoded: unknown) => K | undefined): K {
  try {
    const key = read(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')))
    if (key !== undefined) return key
  } catch {
    // falls through to the 400
  }
  throw new HttpError(400, 'VALIDATION_FAILED', 'Invalid query: cursor is not one this API returned')
}
