// A local stand-in for AWS Secrets Manager, for developers and the e2e tests. Dev tooling only: it
// is never bundled into a Lambda. It speaks the JSON 1.1 protocol the SDK uses for the operations
// this project needs, answers errors in the shape the SDK parses, and keeps its secrets in a file.
// The real SDK finds it through AWS_ENDPOINT_URL_SECRETS_MANAGER; no production code knows it exists.
// It checks no signature: it binds to 127.0.0.1 only.
import { randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { dirname } from 'node:path'

const defaults = {
  port: 0,
  file: '.local/secrets.json',
  region: 'us-east-1',
  account: '000000000000',
}

interface Version {
  secretString: string
  stages: string[]
  createdDate: number
}

interface Secret {
  arn: string
  name: string
  createdDate: number
  lastChangedDate: number
  versions: Record<string, Version>
  /** Set by DeleteSecret with a recovery window: the secret is kept, and refused, until restored. */
  deletedDate?: number
}

type Store = Record<string, Secret>

class ServiceError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message)
  }
}

const notFound = (id: string) =>
  new ServiceError('ResourceNotFoundException', `Secrets Manager can't find the specified secret: ${id}`)

// As AWS: a secret scheduled for deletion is still there (DescribeSecret shows its DeletedDate, and
// RestoreSecret brings it back), but its value can be neither read nor written.
const markedForDeletion = () =>
  new ServiceError(
    'InvalidRequestException',
    "You can't perform this operation on the secret because it was marked for deletion.",
  )

export interface LocalSecretsManager {
  url: string
  port: number
  close(): Promise<void>
}

export async function startLocalSecretsManager(
  options: Partial<typeof defaults> = {},
): Promise<LocalSecretsManager> {
  const config = { ...defaults, ...options }
  // A null-prototype object: a secret named "constructor" or "toString" is just a name.
  const store: Store = Object.assign(
    Object.create(null),
    existsSync(config.file) ? JSON.parse(readFileSync(config.file, 'utf8')) : {},
  )

  const save = () => {
    mkdirSync(dirname(config.file), { recursive: true })
    const tmp = `${config.file}.${process.pid}.tmp`
    writeFileSync(tmp, JSON.stringify(store, null, 2), { mode: 0o600 })
    renameSync(tmp, config.file) // atomic: a crash never leaves half a file
  }

  const find = (id: unknown): Secret => {
    if (typeof id !== 'string' || id.length === 0)
      throw new ServiceError('InvalidParameterException', 'SecretId is required')
    const secret = Object.hasOwn(store, id) ? store[id] : Object.values(store).find((s) => s.arn === id)
    if (!secret) throw notFound(id)
    return secret
  }

  // A secret that is not scheduled for deletion.
  const live = (id: unknown): Secret => {
    const secret = find(id)
    if (secret.deletedDate !== undefined) throw markedForDeletion()
    return secret
  }

  const versionWith = (secret: Secret, stage: string): [string, Version] | undefined =>
    Object.entries(secret.versions).find(([, v]) => v.stages.includes(stage))

  const moveStage = (secret: Secret, stage: string, toVersionId: string) => {
    for (const v of Object.values(secret.versions)) v.stages = v.stages.filter((s) => s !== stage)
    secret.versions[toVersionId]?.stages.push(stage)
  }

  const addVersion = (secret: Secret, secretString: unknown, token: unknown, stages: unknown): string => {
    if (typeof secretString !== 'string') {
      throw new ServiceError(
        'InvalidParameterException',
        'SecretString is required (binary secrets are not supported here)',
      )
    }
    const versionId = typeof token === 'string' && token ? token : randomUUID()
    if (secret.versions[versionId]) {
      if (secret.versions[versionId].secretString === secretString) return versionId // idempotent retry
      throw new ServiceError(
        'ResourceExistsException',
        `Version ${versionId} already exists with other content`,
      )
    }
    const labels = Array.isArray(stages) && stages.length > 0 ? stages.map(String) : ['AWSCURRENT']
    const now = Date.now() / 1000
    secret.versions[versionId] = { secretString, stages: [], createdDate: now }
    for (const label of labels) {
      if (label === 'AWSCURRENT') {
        const previous = versionWith(secret, 'AWSCURRENT')
        if (previous) moveStage(secret, 'AWSPREVIOUS', previous[0])
      }
      moveStage(secret, label, versionId)
    }
    secret.lastChangedDate = now
    return versionId
  }

  const operations: Record<string, (input: Record<string, unknown>) => object> = {
    CreateSecret(input) {
      const name = input.Name
      if (typeof name !== 'string' || !/^[A-Za-z0-9/_+=.@-]{1,512}$/.test(name)) {
        throw new ServiceError(
          'InvalidParameterException',
          'Name is missing or has characters Secrets Manager does not allow',
        )
      }
      if (Object.hasOwn(store, name)) {
        if (store[name]?.deletedDate !== undefined) {
          throw new ServiceError(
            'InvalidRequestException',
            "You can't create this secret because a secret with this name is already scheduled for deletion.",
          )
        }
        throw new ServiceError('ResourceExistsException', `The secret ${name} already exists.`)
      }
      const now = Date.now() / 1000
      const secret: Secret = {
        arn: `arn:aws:secretsmanager:${config.region}:${config.account}:secret:${name}-${randomUUID().slice(0, 6)}`,
        name,
        createdDate: now,
        lastChangedDate: now,
        versions: {},
      }
      // Like AWS, a secret may be created without a value; its first PutSecretValue makes AWSCURRENT.
      const versionId =
        input.SecretString === undefined
          ? undefined
          : addVersion(secret, input.SecretString, input.ClientRequestToken, undefined)
      store[name] = secret
      save()
      return { ARN: secret.arn, Name: name, VersionId: versionId }
    },
    GetSecretValue(input) {
      const secret = live(input.SecretId)
      let found: [string, Version] | undefined
      if (typeof input.VersionId === 'string') {
        const v = secret.versions[input.VersionId]
        found = v ? [input.VersionId, v] : undefined
      } else {
        found = versionWith(
          secret,
          typeof input.VersionStage === 'string' ? input.VersionStage : 'AWSCURRENT',
        )
      }
      if (!found) {
        throw new ServiceError(
          'ResourceNotFoundException',
          "Secrets Manager can't find the specified secret value for the version or staging label",
        )
      }
      const [versionId, version] = found
      return {
        ARN: secret.arn,
        Name: secret.name,
        VersionId: versionId,
        SecretString: version.secretString,
        VersionStages: version.stages,
        CreatedDate: version.createdDate,
      }
    },
    PutSecretValue(input) {
      const secret = live(input.SecretId)
      const versionId = addVersion(secret, input.SecretString, input.ClientRequestToken, input.VersionStages)
      save()
      return {
        ARN: secret.arn,
        Name: secret.name,
        VersionId: versionId,
        VersionStages: secret.versions[versionId]?.stages,
      }
    },
    // As AWS: moving a label that is on another version needs RemoveFromVersionId naming that
    // version; RemoveFromVersionId alone takes the label off.
    UpdateSecretVersionStage(input) {
      const secret = live(input.SecretId)
      const stage = input.VersionStage
      const to = input.MoveToVersionId
      const from = input.RemoveFromVersionId
      if (typeof stage !== 'string')
        throw new ServiceError('InvalidParameterException', 'VersionStage is required')
      if (to !== undefined && (typeof to !== 'string' || !secret.versions[to])) {
        throw new ServiceError('InvalidParameterException', 'MoveToVersionId must name an existing version')
      }
      const holder = versionWith(secret, stage)?.[0]
      if (from !== undefined && from !== holder) {
        throw new ServiceError(
          'InvalidParameterException',
          `${stage} is not attached to version ${String(from)}`,
        )
      }
      if (to === undefined) {
        if (from === undefined)
          throw new ServiceError('InvalidParameterException', 'Name MoveToVersionId or RemoveFromVersionId')
        if (stage === 'AWSCURRENT')
          throw new ServiceError('InvalidParameterException', 'AWSCURRENT cannot be removed, only moved')
        moveStage(secret, stage, '')
      } else {
        if (holder !== undefined && holder !== to && from === undefined) {
          throw new ServiceError(
            'InvalidParameterException',
            `${stage} is attached to version ${holder}: name it in RemoveFromVersionId to move the label`,
          )
        }
        if (stage === 'AWSCURRENT' && holder !== undefined && holder !== to)
          moveStage(secret, 'AWSPREVIOUS', holder)
        moveStage(secret, stage, to)
      }
      secret.lastChangedDate = Date.now() / 1000
      save()
      return { ARN: secret.arn, Name: secret.name }
    },
    DescribeSecret(input) {
      const secret = find(input.SecretId)
      return {
        ARN: secret.arn,
        Name: secret.name,
        CreatedDate: secret.createdDate,
        LastChangedDate: secret.lastChangedDate,
        DeletedDate: secret.deletedDate,
        VersionIdsToStages: Object.fromEntries(
          Object.entries(secret.versions).map(([id, v]) => [id, v.stages]),
        ),
      }
    },
    ListSecrets(input) {
      return {
        SecretList: Object.values(store)
          .filter((s) => s.deletedDate === undefined || input.IncludePlannedDeletion === true)
          .map((s) => ({
            ARN: s.arn,
            Name: s.name,
            LastChangedDate: s.lastChangedDate,
          })),
      }
    },
    // As AWS: scheduled for deletion after the recovery window (7 to 30 days, 30 by default), and
    // refused a second time; ForceDeleteWithoutRecovery deletes at once, scheduled or not. The
    // window never ends here: a local store keeps the secret until it is restored or forced out.
    DeleteSecret(input) {
      const secret = find(input.SecretId)
      if (input.ForceDeleteWithoutRecovery === true) {
        delete store[secret.name]
        save()
        return { ARN: secret.arn, Name: secret.name, DeletionDate: Date.now() / 1000 }
      }
      if (secret.deletedDate !== undefined) throw markedForDeletion()
      const days = input.RecoveryWindowInDays === undefined ? 30 : Number(input.RecoveryWindowInDays)
      if (!Number.isInteger(days) || days < 7 || days > 30) {
        throw new ServiceError('InvalidParameterException', 'RecoveryWindowInDays must be between 7 and 30')
      }
      secret.deletedDate = Date.now() / 1000
      save()
      return { ARN: secret.arn, Name: secret.name, DeletionDate: secret.deletedDate + days * 86_400 }
    },
    RestoreSecret(input) {
      const secret = find(input.SecretId)
      delete secret.deletedDate
      save()
      return { ARN: secret.arn, Name: secret.name }
    },
  }

  const send = (res: ServerResponse, status: number, body: object) => {
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' })
    res.end(JSON.stringify(body))
  }

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    try {
      for await (const chunk of req) chunks.push(chunk as Buffer)
      const target = String(req.headers['x-amz-target'] ?? '')
      const name = target.startsWith('secretsmanager.') ? target.slice('secretsmanager.'.length) : ''
      const operation = Object.hasOwn(operations, name) ? operations[name] : undefined
      if (req.method !== 'POST' || !operation) {
        throw new ServiceError('UnknownOperationException', `Unsupported operation ${target || '(none)'}`)
      }
      let input: Record<string, unknown>
      try {
        input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}')
      } catch {
        throw new ServiceError('SerializationException', 'The request body is not JSON')
      }
      send(res, 200, operation(input))
    } catch (err) {
      const e = err instanceof ServiceError ? err : new ServiceError('InternalServiceError', 'Internal error')
      res.setHeader('x-amzn-errortype', e.type)
      send(res, e.type === 'InternalServiceError' ? 500 : 400, { __type: e.type, message: e.message })
    }
  }

  const server: Server = createServer((req, res) => void handle(req, res))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.port, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
