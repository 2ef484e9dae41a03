// GET /health: the master pool answers. A placeholder until the tenant API lands.
import { getTenantPools } from '../../lib'

export const handler = async (): Promise<{
  statusCode: number
  headers: Record<string, string>
  body: string
}> => {
  const json = { 'content-type': 'application/json' }
  try {
    await getTenantPools().master.query('SELECT 1')
    return { statusCode: 200, headers: json, body: JSON.stringify({ ok: true }) }
  } catch (err) {
    // No error text to the caller: it may name hosts or roles.
    const code = (err as { code?: unknown }).code
    return {
      statusCode: 503,
      headers: { ...json, 'retry-after': '1' },
      body: JSON.stringify({
        error: { code: typeof code === 'string' ? code : 'UNAVAILABLE', message: 'Database unavailable' },
      }),
    }
  }
}
