// GET /notes: the caller's tenant (the JWT's tenant_id claim) and its notes, read with Kysely.
import middy from '@middy/core'
import type { APIGatewayProxyEventV2WithJWTAuthorizer, APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import { Kysely, PostgresDialect } from 'kysely'
import { httpErrors, jsonResponse, type TenantContext, tenantDb } from 'tenant-pools/middy'
import type { TenantPgPool } from 'tenant-pools/pg-pool'
import { catalog, type Database, pools } from './db.js'

// context.pgPool is the tenant's schema as a pg.Pool, with this request's deadline: one Kysely per
// request costs nothing (it holds no connection).
const kyselyOn = (pool: TenantPgPool) => new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })

type Event = APIGatewayProxyEventV2WithJWTAuthorizer
type Result = APIGatewayProxyStructuredResultV2

// httpErrors first: middy runs onError last-used first, so tenantDb has released everything when
// httpErrors answers.
export const handler = middy<Event, Result, Error, TenantContext>()
  .use(httpErrors({ logger: console }))
  .use(tenantDb({ pools, catalog }))
  .handler(async (_event, context) => {
    const notes = await kyselyOn(context.pgPool)
      .selectFrom('notes')
      .select(['id', 'body'])
      .orderBy('id')
      .execute()
    return jsonResponse(200, { tenant: context.tenant.id, notes })
  })
