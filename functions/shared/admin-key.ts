// The admin key: from Secrets Manager (ADMIN_API_KEY_SECRET_ID, the deployed and local setup) or,
// for tests, from ADMIN_API_KEY. Cached for five minutes; a failed read is not cached.
import { readSecretString } from '../../lib/aws/secrets'
import { ExpiringCache } from '../../lib/credentials/cache'
import { config } from './config'

const cache = new ExpiringCache<string | undefined>(300_000, { now: () => Date.now() })

export function adminKey(): Promise<string | undefined> {
  const { ADMIN_API_KEY_SECRET_ID: secretId, ADMIN_API_KEY: key } = config()
  if (!secretId) return Promise.resolve(key)
  return cache.get(secretId, false, async () => (await readSecretString(secretId)) || undefined)
}

/** Forgets the cached key, for tests. */
export const resetAdminKey = (): void => cache.clear()
