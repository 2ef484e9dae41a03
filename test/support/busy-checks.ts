// What a busy tenant's moves must leave true, read straight from the servers (not through the code
// under test): every acknowledged write is on the cluster the catalog names and on no other; a
// write refused for the move did not land anywhere; no move is left claimed and no fence standing.
import { type Client, escapeIdentifier } from 'pg'
import { acknowledged, refusedForMove, type Write } from './busy-writers'
import { onServer } from './db'
import { clusterUrls } from './move-check'

const MAX_LISTED = 5

/** The references starting with `prefix` in the tenant's orders on one cluster; undefined: no schema. */
async function referencesOn(
  cluster: string,
  schema: string,
  prefix: string,
): Promise<Set<string> | undefined> {
  return onServer(clusterUrls[cluster]?.() ?? '', async (c) => {
    if (!(await hasSchema(c, schema))) return undefined
    const { rows } = await c.query<{ reference: string }>(
      `SELECT reference FROM ${escapeIdentifier(schema)}.orders WHERE starts_with(reference, $1)`,
      [prefix],
    )
    return new Set(rows.map((r) => r.reference))
  })
}

const hasSchema = async (c: Client, schema: string): Promise<boolean> =>
  (await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount === 1

async function fenceTriggers(cluster: string, schema: string): Promise<number> {
  return onServer(clusterUrls[cluster]?.() ?? '', async (c) => {
    const { rows } = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = r.relnamespace
       WHERE n.nspname = $1 AND t.tgname = 'tenant_pools_fence'`,
      [schema],
    )
    return rows[0]?.n ?? 0
  })
}

interface Placement {
  cluster: string
  moving_to: string | null
  old_copy_on: string | null
}

const placementOf = (id: string): Promise<Placement | undefined> =>
  onServer(clusterUrls.main?.() ?? '', async (c) => {
    const { rows } = await c.query<Placement>(
      'SELECT cluster, moving_to, old_copy_on FROM tenants WHERE id = $1',
      [id],
    )
    return rows[0]
  })

// At most a few of a long list, and how many in all.
const listed = (what: string, items: string[]): string[] =>
  items.length === 0
    ? []
    : [
        `${items.length} ${what}: ${items.slice(0, MAX_LISTED).join(', ')}${items.length > MAX_LISTED ? ' …' : ''}`,
      ]

/**
 * What is wrong with the tenant now, no move being under way: the writes answered before `cutoff`
 * are checked (writes still running may land meanwhile, on the cluster the catalog names).
 */
export async function placementProblems(
  tenantId: string,
  schema: string,
  tag: string,
  writes: Write[],
  cutoff: number,
): Promise<string[]> {
  const placement = await placementOf(tenantId)
  if (!placement) return [`the catalog has no row for ${tenantId}`]
  const wrong: string[] = []
  if (placement.moving_to !== null) wrong.push(`catalog: moving_to ${placement.moving_to}`)
  if (placement.old_copy_on !== null) wrong.push(`catalog: old_copy_on ${placement.old_copy_on}`)
  const on: Record<string, Set<string> | undefined> = {}
  for (const cluster of Object.keys(clusterUrls)) {
    on[cluster] = await referencesOn(cluster, schema, `${tag}-`)
    const fences = on[cluster] === undefined ? 0 : await fenceTriggers(cluster, schema)
    if (fences > 0) wrong.push(`${fences} fence trigger(s) left on ${cluster}`)
  }
  const placed = on[placement.cluster]
  if (placed === undefined)
    wrong.push(`no schema on ${placement.cluster}, where the catalog places the tenant`)
  const answered = writes.filter((w) => w.answeredAt <= cutoff)
  const missing: string[] = []
  const elsewhere: string[] = []
  const landed: string[] = []
  for (const w of answered) {
    const holders = Object.keys(on).filter((c) => on[c]?.has(w.reference))
    if (acknowledged(w)) {
      if (!holders.includes(placement.cluster)) missing.push(w.reference)
      for (const c of holders) if (c !== placement.cluster) elsewhere.push(`${w.reference} on ${c}`)
    } else if (refusedForMove(w) && holders.length > 0) landed.push(`${w.reference} on ${holders.join('+')}`)
  }
  return [
    ...wrong,
    ...listed(`acknowledged write(s) not on ${placement.cluster} (the catalog's cluster)`, missing),
    ...listed('acknowledged write(s) also on another cluster', elsewhere),
    ...listed('write(s) refused with TENANT_MOVING that landed', landed),
  ]
}

/** Writes answered with anything but 201 or 503 TENANT_MOVING with Retry-After. */
export const unexpectedAnswers = (writes: Write[]): Write[] =>
  writes.filter((w) => !acknowledged(w) && !refusedForMove(w))

/** `status code` of each unexpected answer, counted. */
export function answerCounts(writes: Write[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const w of writes) {
    const key = w.code === undefined ? String(w.status) : `${w.status} ${w.code}`
    counts[key] = (counts[key] ?? 0) + 1
  }
  return counts
}
