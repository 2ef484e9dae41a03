// A bigint column's or a sum's text, as PostgreSQL gives it, for a JSON answer: exact at any size.
// JSON numbers have no limit, but a JavaScript number rounds past 2^53 (a tenant's revenue in cents
// gets there), so a larger one is written as its own digits with JSON.rawJSON (Node 21 and later).

// Not yet in TypeScript's lib.
const { rawJSON } = JSON as unknown as { rawJSON(text: string): unknown }

/**
 * The integer `text` (a bigint or numeric without a fraction) as a JSON number; 0 for null. It is a
 * number in memory only while it is a safe integer: past that, only its JSON is exact.
 *
 * @example
 * return jsonResponse(200, { revenueCents: jsonInteger(row.revenue) })
 */
export function jsonInteger(text: string | null | undefined): number {
  if (text === null || text === undefined) return 0
  const n = Number(text)
  if (Number.isSafeInteger(n)) return n
  if (!/^-?\d+$/.test(text)) throw new TypeError('jsonInteger: not an integer')
  // A raw JSON value: JSON.stringify writes its digits as they are.
  return rawJSON(text) as number
}
