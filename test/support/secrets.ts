// The local Secrets Manager for integration tests, reached through the real SDK.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import { type LocalSecretsManager, startLocalSecretsManager } from '../../scripts/local-secrets-manager'

export async function localSecrets(): Promise<{
  server: LocalSecretsManager
  client: SecretsManagerClient
  file: string
}> {
  const file = join(mkdtempSync(join(tmpdir(), 'tenant-pools-sm-')), 'secrets.json')
  const server = await startLocalSecretsManager({ file })
  const client = new SecretsManagerClient({
    endpoint: server.url,
    region: 'us-east-1',
    // The local server checks no signature; the SDK still wants something to sign with.
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  })
  return { server, client, file }
}

export const rdsSecret = (username: string, password: string) =>
  JSON.stringify({ engine: 'postgres', host: '127.0.0.1', port: 5432, dbname: 'app', username, password })
