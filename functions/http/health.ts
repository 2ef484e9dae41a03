// GET /health: liveness. No tenant, no auth, no database and no secret: a flood of it opens no
// connection anywhere. Readiness (the database answers) is behind the admin key: GET /admin/pools.
import { jsonResponse } from '../../lib/middy/json-response'

export const handler = async () => jsonResponse(200, { ok: true })
