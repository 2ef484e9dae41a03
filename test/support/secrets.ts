// The local Secrets Manager for integration tests, reached through the real SDK.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import { type LocalSecretsManager, startLocalSecretsManager } from '../../scripts/local-secrets-manager'

export async function localSecrets(): Promise<{
  server: LocalSecretsManager
  client: SecretsManagerClient
  file: string
}> {
  const dir = mkdtempSync(join(tmpdir(), 'tenant-pools-sm-'))
  const file = join(dir, 'secrets.json')
  const started = await startLocalSecretsManager({ file })
  // Closing it removes its folder too, else every run leaves one behind.
  const server: LocalSecretsManager = {
    ...started,
    close: async () => {
      await started.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
  return { server, client: secretsClient(server.url), file }
}

/** A client of the real SDK for the local Secrets Manager at `url`. */
export const secretsClient = (url: string): SecretsManagerClient =>
  new SecretsManagerClient({
    endpoint: url,
    region: 'us-east-1',
    // The local server checks no signature; the SDK still wants something to sign with.
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  })

/**
 * The variables that point a default SDK client (the library's own, built from the environment) at
 * the local Secrets Manager at `url`.
 */
export const sdkEnvFor = (url: string) => ({
  AWS_ENDPOINT_URL_SECRETS_MANAGER: url,
  AWS_REGION: 'us-east-1',
  // The local server checks no signature; the SDK still wants something to sign with.
  AWS_ACCESS_KEY_ID: 'local',
  AWS_SECRET_ACCESS_KEY: 'local',
})

export const rdsSecret = (username: string, password: string) =>
  JSON.stringify({ engine: 'postgres', host: '127.0.0.1', port: 5432, dbname: 'app', username, password })
