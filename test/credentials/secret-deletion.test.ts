// deleteSecret (lib/aws/secrets.ts) against Secrets Manager's answers, mocked at the SDK client:
// scheduled, missing, or scheduled already (a retry) are done; an InvalidRequestException for any
// other reason, or a throttle, is the caller's to see.
import {
  DeleteSecretCommand,
  DescribeSecretCommand,
  InvalidRequestException,
  ResourceNotFoundException,
  SecretsManagerClient,
  SecretsManagerServiceException,
} from '@aws-sdk/client-secrets-manager'
import { mockClient } from 'aws-sdk-client-mock'
import { deleteSecret, isScheduledForDeletion } from '../../lib/aws/secrets'
import { resetSecretsManagerClient } from '../../lib/aws/secrets-manager-client'

const refused = () => new InvalidRequestException({ $metadata: {}, message: 'refused' })
const missing = () => new ResourceNotFoundException({ $metadata: {}, message: 'missing' })
const throttled = () =>
  new SecretsManagerServiceException({
    name: 'ThrottlingException',
    $fault: 'client',
    $metadata: {},
    message: 'slow',
  })

describe('Function: deleteSecret', () => {
  const sm = mockClient(SecretsManagerClient)
  const saved = { ...process.env }

  beforeAll(() => {
    process.env.AWS_REGION = 'us-east-1'
    resetSecretsManagerClient()
  })
  afterAll(() => {
    process.env = saved
    resetSecretsManagerClient()
    sm.restore()
  })
  beforeEach(() => sm.reset())

  it('schedules the secret for deletion with the recovery window given: true', async () => {
    sm.on(DeleteSecretCommand).resolves({ Name: 'x' })
    expect(await deleteSecret('app/tenants/acme', 9)).toBe(true)
    expect(sm.commandCalls(DeleteSecretCommand)[0]?.args[0].input).toEqual({
      SecretId: 'app/tenants/acme',
      RecoveryWindowInDays: 9,
    })
  })

  it('a secret that does not exist: false, nothing else asked', async () => {
    sm.on(DeleteSecretCommand).rejects(missing())
    expect(await deleteSecret('app/tenants/acme')).toBe(false)
    expect(sm.commandCalls(DescribeSecretCommand)).toHaveLength(0)
  })

  it('a secret scheduled already (refused, and its DeletedDate set): false', async () => {
    sm.on(DeleteSecretCommand).rejects(refused())
    sm.on(DescribeSecretCommand).resolves({ Name: 'x', DeletedDate: new Date() })
    expect(await deleteSecret('app/tenants/acme')).toBe(false)
  })

  it('refused for another reason (no DeletedDate), or the secret gone meanwhile: the refusal is thrown', async () => {
    sm.on(DeleteSecretCommand).rejects(refused())
    sm.on(DescribeSecretCommand).resolves({ Name: 'x' })
    await expect(deleteSecret('app/tenants/acme')).rejects.toBeInstanceOf(InvalidRequestException)
    sm.on(DescribeSecretCommand).rejects(missing())
    await expect(deleteSecret('app/tenants/acme')).rejects.toBeInstanceOf(InvalidRequestException)
  })

  it('a throttle is thrown, and never taken for done', async () => {
    sm.on(DeleteSecretCommand).rejects(throttled())
    await expect(deleteSecret('app/tenants/acme')).rejects.toMatchObject({ name: 'ThrottlingException' })
    expect(sm.commandCalls(DescribeSecretCommand)).toHaveLength(0)
  })
})

describe('Function: isScheduledForDeletion', () => {
  const sm = mockClient(SecretsManagerClient)
  beforeEach(() => sm.reset())
  afterAll(() => sm.restore())

  it('by DeletedDate; false for a secret that does not exist; other failures thrown', async () => {
    sm.on(DescribeSecretCommand).resolvesOnce({ DeletedDate: new Date() }).resolvesOnce({ Name: 'x' })
    expect(await isScheduledForDeletion('s')).toBe(true)
    expect(await isScheduledForDeletion('s')).toBe(false)
    sm.on(DescribeSecretCommand).rejects(missing())
    expect(await isScheduledForDeletion('s')).toBe(false)
    sm.on(DescribeSecretCommand).rejects(throttled())
    await expect(isScheduledForDeletion('s')).rejects.toMatchObject({ name: 'ThrottlingException' })
  })
})
