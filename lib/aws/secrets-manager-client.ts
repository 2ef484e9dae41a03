// The one Secrets Manager client of an environment, loaded on first use. The SDK is imported lazily
// so that a function's init never pays for it (it is the largest module a handler can reach), and it
// is not bundled: Lambda's Node.js runtime ships it (docs/benchmarks.md, "Cold start").
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager'

export type SecretsManagerSdk = typeof import('@aws-sdk/client-secrets-manager')

let sdk: Promise<SecretsManagerSdk> | undefined
let client: Promise<SecretsManagerClient> | undefined

/** The SDK module, loaded once. */
export function secretsManagerSdk(): Promise<SecretsManagerSdk> {
  sdk ??= loadSdk().catch((err: unknown) => {
    sdk = undefined
    throw err
  })
  return sdk
}

// Required where require exists (the bundled handlers are CommonJS): import() goes through Node's ES
// module loader, which lexes every CommonJS file the SDK loads for its exports, tens of milliseconds
// of a cold start's first answer (docs/benchmarks.md, "Cold start"). An ES module build has no
// require (esbuild's stand-in throws): there, import().
function loadSdk(): Promise<SecretsManagerSdk> {
  let required: SecretsManagerSdk
  try {
    required = require('@aws-sdk/client-secrets-manager')
  } catch {
    return import('@aws-sdk/client-secrets-manager')
  }
  return Promise.resolve(required)
}

/** The shared client, built from the environment (AWS_REGION, AWS_ENDPOINT_URL_SECRETS_MANAGER …). */
export function secretsManagerClient(): Promise<SecretsManagerClient> {
  client ??= secretsManagerSdk().then(
    (m) => new m.SecretsManagerClient({}),
    (err: unknown) => {
      client = undefined
      throw err
    },
  )
  return client
}

/** Forgets the shared client, for tests (a test that changes the endpoint needs a new one). */
export function resetSecretsManagerClient(): void {
  client = undefined
}
