// GET /health: the master pool answers. No tenant, no auth: for load balancers and `npm start`.
import { jsonResponse } from '../../lib'
import { pools } from '../shared/runtime'

export const handler = async () => {
  try {
    await pools().master.query('SELECT 1')
    return jsonResponse(200, { ok: true })
  } catch {
    // No error text: it may name hosts or roles.
    return jsonResponse(
      503,
      { error: { code: 'DATABASE_UNAVAILABLE', message: 'Database unavailable' } },
      { 'retry-after': '1' },
    )
  }
}
