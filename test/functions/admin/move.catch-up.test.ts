// A tenant moved while its rows change every way a caller can change them: orders inserted with
// their lines, updated, soft-deleted and their reference used again, lines deleted, orders deleted
// outright. The copy runs while they go on and catches up from the change log; only the last pass
// runs behind the fence. Afterwards the new copy holds exactly what every acknowledged write left.
import { moveTenant } from '../../../functions/admin/move'
import { migrateMaster, provisionTenant } from '../../../functions/admin/provision'
import { placedDb, TenantCatalog, TenantMovingError, TenantPools } from '../../../lib'
import { clusterBUrl, databaseUrl, onServer, uniqueTenant } from '../../support/db'
import { figure } from '../../support/figures'
import { memoryLog } from '../../support/memory-log'
import { fencesOn, seedOrders } from '../../support/move-check'

// What the acknowledged writes left, per reference: the live order's customer and its line count.
type Model = Map<string, { customer: string; lines: number } | undefined>

// The live orders on one cluster, as the model keeps them.
const liveOn = (url: string, id: string): Promise<Model> =>
  onServer(url, async (c) => {
    const { rows } = await c.query<{ reference: string; customer: string; lines: number }>(
      `SELECT o.reference, o.customer, count(l.line_no)::int AS lines
       FROM tenant_${id}.orders o LEFT JOIN tenant_${id}.order_lines l ON l.order_id = o.id
       WHERE o.deleted_at IS NULL AND o.reference LIKE 'w%' GROUP BY o.id`,
    )
    return new Map(rows.map((r) => [r.reference, { customer: r.customer, lines: r.lines }]))
  })

describe('A move under every kind of write', () => {
  const { log } = memoryLog()
  const pools = new TenantPools({
    logger: log,
    connectionString: databaseUrl(),
    clusters: { b: { connectionString: clusterBUrl() } },
  })
  const catalog = new TenantCatalog(() => pools, { ttlMs: 0 })
  afterAll(() => pools.end())

  it.each([
    ['main', 'b'],
    ['b', 'main'],
  ])('ends on %s→%s with exactly what the acknowledged writes left', async (from, to) => {
    await migrateMaster(pools)
    const id = uniqueTenant('cu')
    await provisionTenant(pools, id, from)
    if (from === 'main') await seedOrders(id, 5_000)
    const model: Model = new Map()
    const outcomes = { acknowledged: 0, refused: 0, failed: [] as string[] }
    let running = true
    let n = 0
    const db = async () =>
      placedDb({ pools, catalog, tenantId: id, placement: await catalog.placement(id), limits: {} })
    // One writer's ops on its own references, so the model of each reference has one author.
    const writer = async (w: number) => {
      const mine: string[] = []
      while (running) {
        const step = n++
        const pick = mine[step % Math.max(mine.length, 1)]
        try {
          const d = await db()
          if (pick === undefined || step % 5 === 0) {
            const reference = `w${w}-${step}`
            await d.transaction(async (t) => {
              const { rows } = await t.query<{ id: string }>(
                `INSERT INTO orders (reference, customer, total_cents) VALUES ($1, 'c0', 1) RETURNING id`,
                [reference],
              )
              await t.query(`INSERT INTO order_lines VALUES ($1, 1, 's', 1, 1), ($1, 2, 's', 1, 1)`, [
                rows[0]?.id,
              ])
            })
            mine.push(reference)
            model.set(reference, { customer: 'c0', lines: 2 })
          } else if (step % 5 === 1) {
            await d.query(`UPDATE orders SET customer = $2 WHERE reference = $1 AND deleted_at IS NULL`, [
              pick,
              `c${step}`,
            ])
            const was = model.get(pick)
            if (was) model.set(pick, { ...was, customer: `c${step}` })
          } else if (step % 5 === 2) {
            await d.query(
              `DELETE FROM order_lines WHERE line_no = 2 AND order_id IN
                 (SELECT id FROM orders WHERE reference = $1 AND deleted_at IS NULL)`,
              [pick],
            )
            const was = model.get(pick)
            if (was) model.set(pick, { ...was, lines: Math.min(was.lines, 1) })
          } else if (step % 5 === 3) {
            // Soft delete, then the same reference again: the live-reference unique index is tested.
            await d.transaction(async (t) => {
              await t.query(
                `UPDATE orders SET deleted_at = now() WHERE reference = $1 AND deleted_at IS NULL`,
                [pick],
              )
              await t.query(`INSERT INTO orders (reference, customer, total_cents) VALUES ($1, 'again', 1)`, [
                pick,
              ])
            })
            model.set(pick, { customer: 'again', lines: 0 })
          } else {
            await d.transaction(async (t) => {
              await t.query(
                `DELETE FROM order_lines WHERE order_id IN (SELECT id FROM orders WHERE reference = $1)`,
                [pick],
              )
              await t.query(`DELETE FROM orders WHERE reference = $1`, [pick])
            })
            mine.splice(mine.indexOf(pick), 1)
            model.set(pick, undefined)
          }
          outcomes.acknowledged++
        } catch (err) {
          if (err instanceof TenantMovingError) outcomes.refused++
          else outcomes.failed.push(`${(err as { code?: string }).code}: ${(err as Error).message}`)
        }
      }
    }
    const writers = Array.from({ length: 4 }, (_, w) => writer(w))
    await new Promise((r) => setTimeout(r, 300))
    const report = await moveTenant(pools, catalog, id, to, log).finally(async () => {
      await new Promise((r) => setTimeout(r, 300))
      running = false
      await Promise.all(writers)
    })

    const urls: Record<string, string> = { main: databaseUrl(), b: clusterBUrl() }
    const live = await liveOn(urls[to] as string, id)
    const expected = new Map([...model].filter(([, v]) => v !== undefined))
    expect(outcomes.failed).toEqual([])
    expect(outcomes.acknowledged).toBeGreaterThan(50)
    expect(Object.fromEntries(live)).toEqual(Object.fromEntries(expected))
    expect(report).toMatchObject({ from, to, outcome: 'moved', oldCopyRemoved: true })
    expect(report.timings?.catchUpPasses).toBeGreaterThan(0)
    // Nothing of the move left on the new copy: no fence, no capture, no change log.
    expect(await fencesOn(to, id)).toBe(0)
    // The foreign keys are back and validated on the new copy.
    const fks = await onServer(urls[to] as string, (c) =>
      c.query<{ valid: boolean }>(
        `SELECT k.convalidated AS valid FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace
         WHERE n.nspname = $1 AND k.contype = 'f'`,
        [`tenant_${id}`],
      ),
    )
    expect(fks.rows).toEqual([{ valid: true }])
    figure(
      `move ${from}→${to} under writes: ${JSON.stringify({ ...outcomes, failed: outcomes.failed.length, timings: report.timings })}\n`,
    )
  })
})
