import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  InvalidParameterException,
  InvalidRequestException,
  ListSecretsCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  RestoreSecretCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager'
import { startLocalSecretsManager } from '../../scripts/local-secrets-manager'
import { localSecrets, secretsClient } from '../support/secrets'

describe('Tool: local Secrets Manager', () => {
  const closers: Array<() => Promise<void>> = []
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((c) => c()))
  })
  async function setup() {
    const s = await localSecrets()
    closers.push(() => s.server.close())
    return s
  }

  it('creates, reads, versions and describes a secret through the real SDK', async () => {
    const { client } = await setup()

    const created = await client.send(
      new CreateSecretCommand({ Name: 'app/master', SecretString: '{"v":1}' }),
    )
    const put = await client.send(
      new PutSecretValueCommand({ SecretId: 'app/master', SecretString: '{"v":2}' }),
    )
    const current = await client.send(new GetSecretValueCommand({ SecretId: created.ARN }))
    const previous = await client.send(
      new GetSecretValueCommand({ SecretId: 'app/master', VersionStage: 'AWSPREVIOUS' }),
    )
    const described = await client.send(new DescribeSecretCommand({ SecretId: 'app/master' }))

    expect(current).toMatchObject({
      SecretString: '{"v":2}',
      VersionId: put.VersionId,
      VersionStages: ['AWSCURRENT'],
    })
    expect(previous.SecretString).toBe('{"v":1}')
    expect(described.VersionIdsToStages).toEqual({
      [created.VersionId as string]: ['AWSPREVIOUS'],
      [put.VersionId as string]: ['AWSCURRENT'],
    })
  })

  it('stages a pending version and promotes it, as a rotation does', async () => {
    const { client } = await setup()
    await client.send(new CreateSecretCommand({ Name: 'rot', SecretString: 'old' }))

    const pending = await client.send(
      new PutSecretValueCommand({ SecretId: 'rot', SecretString: 'new', VersionStages: ['AWSPENDING'] }),
    )
    const before = await client.send(new GetSecretValueCommand({ SecretId: 'rot' }))
    // As AWS: moving AWSCURRENT off a version needs that version named.
    await expect(
      client.send(
        new UpdateSecretVersionStageCommand({
          SecretId: 'rot',
          VersionStage: 'AWSCURRENT',
          MoveToVersionId: pending.VersionId,
        }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidParameterException' })
    await client.send(
      new UpdateSecretVersionStageCommand({
        SecretId: 'rot',
        VersionStage: 'AWSCURRENT',
        MoveToVersionId: pending.VersionId,
        RemoveFromVersionId: before.VersionId,
      }),
    )
    await client.send(
      new UpdateSecretVersionStageCommand({
        SecretId: 'rot',
        VersionStage: 'AWSPENDING',
        RemoveFromVersionId: pending.VersionId,
      }),
    )
    const after = await client.send(new GetSecretValueCommand({ SecretId: 'rot' }))
    const previous = await client.send(
      new GetSecretValueCommand({ SecretId: 'rot', VersionStage: 'AWSPREVIOUS' }),
    )

    expect([before.SecretString, after.SecretString, previous.SecretString]).toEqual(['old', 'new', 'old'])
    expect(after.VersionStages).toEqual(['AWSCURRENT'])
  })

  it('schedules a deleted secret for deletion, as AWS does: refused until restored, or deleted at once when forced', async () => {
    // Prepare
    const { client } = await setup()
    await client.send(new CreateSecretCommand({ Name: 'gone', SecretString: 'v1' }))

    // Act: scheduled (the default window is 30 days)
    const deleted = await client.send(new DeleteSecretCommand({ SecretId: 'gone' }))

    // Assess: described with its DeletedDate; its value, a new value, the same name and a second
    // deletion refused; left out of the list unless asked for
    const described = await client.send(new DescribeSecretCommand({ SecretId: 'gone' }))
    expect(described.DeletedDate).toBeInstanceOf(Date)
    expect(deleted.DeletionDate?.getTime()).toBeCloseTo(
      (described.DeletedDate as Date).getTime() + 30 * 86_400_000,
      -4,
    )
    for (const refused of [
      new GetSecretValueCommand({ SecretId: 'gone' }),
      new PutSecretValueCommand({ SecretId: 'gone', SecretString: 'v2' }),
      new CreateSecretCommand({ Name: 'gone', SecretString: 'v2' }),
      new DeleteSecretCommand({ SecretId: 'gone', RecoveryWindowInDays: 7 }),
    ]) {
      // biome-ignore lint/suspicious/noExplicitAny: the commands' input and output types differ; send takes each.
      await expect(client.send(refused as any)).rejects.toBeInstanceOf(InvalidRequestException)
    }
    expect((await client.send(new ListSecretsCommand({}))).SecretList).toEqual([])
    expect(
      (await client.send(new ListSecretsCommand({ IncludePlannedDeletion: true }))).SecretList,
    ).toHaveLength(1)

    // Act / Assess: restored, it answers its value again
    await client.send(new RestoreSecretCommand({ SecretId: 'gone' }))
    expect((await client.send(new GetSecretValueCommand({ SecretId: 'gone' }))).SecretString).toBe('v1')
    expect((await client.send(new DescribeSecretCommand({ SecretId: 'gone' }))).DeletedDate).toBeUndefined()

    // Act / Assess: a window out of 7 to 30 days is refused; forced, it is gone, scheduled or not
    await expect(
      client.send(new DeleteSecretCommand({ SecretId: 'gone', RecoveryWindowInDays: 3 })),
    ).rejects.toBeInstanceOf(InvalidParameterException)
    await client.send(new DeleteSecretCommand({ SecretId: 'gone', RecoveryWindowInDays: 7 }))
    await client.send(new DeleteSecretCommand({ SecretId: 'gone', ForceDeleteWithoutRecovery: true }))
    await expect(client.send(new DescribeSecretCommand({ SecretId: 'gone' }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    )
    await client.send(new CreateSecretCommand({ Name: 'gone', SecretString: 'v3' }))
    expect((await client.send(new GetSecretValueCommand({ SecretId: 'gone' }))).SecretString).toBe('v3')
  })

  it('treats names like constructor or toString as plain secret names', async () => {
    const { client } = await setup()
    await expect(client.send(new GetSecretValueCommand({ SecretId: 'constructor' }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    )
    await client.send(new CreateSecretCommand({ Name: 'toString', SecretString: 'fine' }))
    await expect(client.send(new GetSecretValueCommand({ SecretId: 'toString' }))).resolves.toMatchObject({
      SecretString: 'fine',
    })
  })

  it('answers errors in the shape the SDK parses into its exception classes', async () => {
    const { client } = await setup()
    await client.send(new CreateSecretCommand({ Name: 'dup', SecretString: 'x' }))

    await expect(client.send(new GetSecretValueCommand({ SecretId: 'missing' }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    )
    await expect(
      client.send(new CreateSecretCommand({ Name: 'dup', SecretString: 'y' })),
    ).rejects.toBeInstanceOf(ResourceExistsException)
    await expect(
      client.send(new GetSecretValueCommand({ SecretId: 'dup', VersionStage: 'AWSPENDING' })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException)
  })

  it('keeps its secrets in its file across restarts', async () => {
    // A folder of its own: the one of localSecrets() goes when its server closes.
    const dir = mkdtempSync(join(tmpdir(), 'tenant-pools-sm-'))
    const file = join(dir, 'secrets.json')
    const first = await startLocalSecretsManager({ file })
    await secretsClient(first.url).send(new CreateSecretCommand({ Name: 'kept', SecretString: 'still here' }))
    await first.close()

    const again = await startLocalSecretsManager({ file })
    closers.push(async () => {
      await again.close()
      rmSync(dir, { recursive: true, force: true })
    })

    await expect(
      secretsClient(again.url).send(new GetSecretValueCommand({ SecretId: 'kept' })),
    ).resolves.toMatchObject({ SecretString: 'still here' })
  })

  it('is found by a default SDK client through AWS_ENDPOINT_URL_SECRETS_MANAGER', async () => {
    const { client, server } = await setup()
    await client.send(new CreateSecretCommand({ Name: 'by-env', SecretString: 'found' }))
    const saved = { ...process.env }
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_SECRETS_MANAGER: server.url,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
    })
    try {
      const fromEnv = new SecretsManagerClient({})
      await expect(fromEnv.send(new GetSecretValueCommand({ SecretId: 'by-env' }))).resolves.toMatchObject({
        SecretString: 'found',
      })
    } finally {
      process.env = saved
    }
  })
})
