// The one way secrets are read, parsed and written here: RDS-style JSON secrets through the shared
// Secrets Manager client, each failure a SecretUnreadableError that names the secret and never
// quotes its text.
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import { SecretUnreadableError } from '../errors'
import * as z from '../zod'
import { secretsManagerClient, secretsManagerSdk } from './secrets-manager-client'

export type VersionStage = 'AWSCURRENT' | 'AWSPENDING'

/**
 * The fields of an RDS secret (as rotation lambdas write them). Only username and password are
 * needed. Built on first use, as lib's other schemas: an init builds none.
 */
const rdsSecret = z.builtOnFirstUse(() =>
  z.object({
    username: z.string().check(z.minLength(1)),
    password: z.string().check(z.minLength(1)),
    host: z.optional(z.string()),
    port: z.optional(z.union([z.number(), z.string()])),
    dbname: z.optional(z.string()),
    engine: z.optional(z.string()),
  }),
)

const awsErrorName = (err: unknown): string => (err as { name?: string } | undefined)?.name ?? 'an error'

/** Whether `err` (a SecretUnreadableError's cause included) says the secret does not exist. */
export const isSecretMissing = (err: unknown): boolean =>
  awsErrorName(err) === 'ResourceNotFoundException' ||
  awsErrorName((err as { cause?: unknown } | undefined)?.cause) === 'ResourceNotFoundException'

/** A secret's SecretString. */
export async function readSecretString(
  secretId: string,
  { stage = 'AWSCURRENT', client }: { stage?: VersionStage; client?: SecretsManagerClient } = {},
): Promise<string> {
  let text: string | undefined
  try {
    const { GetSecretValueCommand } = await secretsManagerSdk()
    const sm = client ?? (await secretsManagerClient())
    text = (await sm.send(new GetSecretValueCommand({ SecretId: secretId, VersionStage: stage })))
      .SecretString
  } catch (err) {
    throw new SecretUnreadableError(secretId, `GetSecretValue (${stage}) failed with ${awsErrorName(err)}`, {
      cause: err,
    })
  }
  if (text === undefined)
    throw new SecretUnreadableError(secretId, 'it has no SecretString (binary secrets are not supported)')
  return text
}

/** An RDS-style secret's username and password. */
export async function readRdsSecret(
  secretId: string,
  options: { stage?: VersionStage; client?: SecretsManagerClient } = {},
): Promise<{ username: string; password: string }> {
  const text = await readSecretString(secretId, options)
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    // No cause: the parser's message quotes the secret's text.
    throw new SecretUnreadableError(secretId, 'its SecretString is not JSON')
  }
  const parsed = rdsSecret().safeParse(json)
  if (!parsed.success) {
    const fields = [...new Set(parsed.error.issues.map((i) => i.path.join('.') || '(root)'))].join(', ')
    throw new SecretUnreadableError(secretId, `missing or invalid field(s): ${fields}`)
  }
  return { username: parsed.data.username, password: parsed.data.password }
}

/** Creates a secret; false when one of that name already exists. */
export async function createSecret(name: string, secretString: string): Promise<boolean> {
  const { CreateSecretCommand } = await secretsManagerSdk()
  const sm = await secretsManagerClient()
  try {
    await sm.send(new CreateSecretCommand({ Name: name, SecretString: secretString }))
    return true
  } catch (err) {
    if (awsErrorName(err) === 'ResourceExistsException') return false
    throw err
  }
}

/**
 * Schedules a secret for deletion; false when there was none, or it was scheduled already (a retry):
 * Secrets Manager refuses that with InvalidRequestException, which it also answers for other
 * reasons, so the secret's DeletedDate decides.
 */
export async function deleteSecret(secretId: string, recoveryWindowInDays = 7): Promise<boolean> {
  const { DeleteSecretCommand } = await secretsManagerSdk()
  const sm = await secretsManagerClient()
  try {
    await sm.send(new DeleteSecretCommand({ SecretId: secretId, RecoveryWindowInDays: recoveryWindowInDays }))
    return true
  } catch (err) {
    if (isSecretMissing(err)) return false
    if (isRefusedRequest(err) && (await isScheduledForDeletion(secretId))) return false
    throw err
  }
}

/**
 * Whether `err` (a SecretUnreadableError's cause included) is Secrets Manager's
 * InvalidRequestException: among other reasons, what it answers for a secret scheduled for deletion.
 */
export const isRefusedRequest = (err: unknown): boolean =>
  awsErrorName(err) === 'InvalidRequestException' ||
  awsErrorName((err as { cause?: unknown } | undefined)?.cause) === 'InvalidRequestException'

/** Whether the secret exists and is scheduled for deletion (its DeletedDate is set). */
export async function isScheduledForDeletion(secretId: string): Promise<boolean> {
  const { DescribeSecretCommand } = await secretsManagerSdk()
  const sm = await secretsManagerClient()
  try {
    const { DeletedDate } = await sm.send(new DescribeSecretCommand({ SecretId: secretId }))
    return DeletedDate !== undefined && DeletedDate !== null
  } catch (err) {
    if (isSecretMissing(err)) return false
    throw err
  }
}

/** Cancels a secret's scheduled deletion: its value can be read again. */
export async function restoreSecret(secretId: string): Promise<void> {
  const { RestoreSecretCommand } = await secretsManagerSdk()
  const sm = await secretsManagerClient()
  await sm.send(new RestoreSecretCommand({ SecretId: secretId }))
}
