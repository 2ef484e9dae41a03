// The orders API: thin handlers over repo.ts, one export per route (see serverless.yml).
import { jsonResponse } from '../../../lib'
import { tenantHandler } from '../../shared/tenant-handler'
import { validate } from '../../shared/validate'
import { createOrder, getOrder, listOrders, orderStats, softDelete, updateStatus } from './repo'
import { createOrderBody, listQuery, orderId, patchOrderBody } from './schema'

const idOf = (params: Record<string, string | undefined> | undefined) =>
  validate(orderId(), params?.id, 'order id')

export const create = tenantHandler(
  async (event, { db }) =>
    jsonResponse(201, await createOrder(db, validate(createOrderBody(), event.body, 'body'))),
  { body: true },
)

// The list and the stats read from the tenant's reader, if its cluster has one: they may lag a write
// by the replica's delay (docs/clusters.md, "Readers"). A look-up by reference reads the primary
// instead: it checks for a create whose answer was lost, and must see it once committed.
export const list = tenantHandler(async (event, { db, readDb }) => {
  const { limit, cursor, reference } = validate(listQuery(), event.queryStringParameters ?? {}, 'query')
  return jsonResponse(200, await listOrders(reference === undefined ? readDb : db, limit, cursor, reference))
})

export const get = tenantHandler(async (event, { db }) =>
  jsonResponse(200, await getOrder(db, idOf(event.pathParameters))),
)

export const patch = tenantHandler(
  async (event, { db }) => {
    const { status, version } = validate(patchOrderBody(), event.body, 'body')
    return jsonResponse(200, await updateStatus(db, idOf(event.pathParameters), status, version))
  },
  { body: true },
)

export const remove = tenantHandler(async (event, { db }) => {
  await softDelete(db, idOf(event.pathParameters))
  return { statusCode: 204, body: '' }
})

export const stats = tenantHandler(async (_event, { readDb }) => jsonResponse(200, await orderStats(readDb)))
