// The opaque keyset cursors of the list routes (GET /orders, GET /admin/tenants): the sort key of a
// page's last row, as JSON, base64url encoded. One that does not decode to a key this API made is the
// caller's mistake: a 400, never a 500.
import { HttpError } from '../../lib'

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
