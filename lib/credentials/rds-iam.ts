// Credentials from RDS IAM authentication: a signed token instead of a password.
import type { Signer, SignerConfig } from '@aws-sdk/rds-signer'
import type { Clock, Credentials, CredentialsProvider, CredentialsRequest } from '../types'
import { ExpiringCache } from './cache'
import { hiddenCredentials, sameCredentials } from './hidden'

const defaults = {
  port: 5432,
  // Tokens are valid for 15 minutes; re-signing at 10 leaves room for a slow connect.
  maxAgeMs: 600_000,
}

/**
 * rdsIamCredentials()'s options: the endpoint and user the token is signed for, and how long a
 * token is reused.
 *
 * @example
 * const credentials = rdsIamCredentials({ host: process.env.PGHOST ?? '', user: 'app_iam', region: 'eu-west-1' })
 */
export interface RdsIamCredentialsOptions {
  host: string
  port?: number
  /** The database user, granted rds_iam. */
  user: string
  /** Defaults to AWS_REGION. */
  region?: string
  maxAgeMs?: number
  /** AWS credentials to sign with; by default the Lambda role's. */
  awsCredentials?: SignerConfig['credentials']
  clock?: Clock
}

/**
 * A credentials provider that signs an RDS IAM auth token. The token is cached, one signing is shared
 * by concurrent callers, and TenantPools refuses to use it without TLS (`requiresTls`).
 *
 * @example
 * new TenantPools({ host, ssl: 'verify-full', credentials: rdsIamCredentials({ host, user: 'app' }) })
 */
export function rdsIamCredentials(options: RdsIamCredentialsOptions): CredentialsProvider {
  const config = { ...defaults, ...options }
  // Imported on first signing: init never pays for the signer and its credential chain.
  let signer: Promise<Signer> | undefined
  const load = () =>
    import('@aws-sdk/rds-signer').then(
      ({ Signer }) =>
        new Signer({
          hostname: config.host,
          port: config.port,
          username: config.user,
          region: config.region,
          credentials: config.awsCredentials,
        }),
    )
  const cache = new ExpiringCache<Credentials>(config.maxAgeMs, config.clock ?? { now: () => Date.now() })
  const sign = async () => {
    signer ??= load().catch((err: unknown) => {
      signer = undefined
      throw err
    })
    return hiddenCredentials(config.user, await (await signer).getAuthToken())
  }
  const provider = (request: CredentialsRequest) =>
    request.refused
      ? cache.refresh('token', request.refused, sameCredentials, sign)
      : cache.get('token', request.forceRefresh, sign)
  return Object.assign(provider, { requiresTls: true })
}
