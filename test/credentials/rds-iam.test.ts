import { Signer } from '@aws-sdk/rds-signer'
import type { CredentialsRequest } from '../../lib'
import { rdsIamCredentials } from '../../lib'

const request: CredentialsRequest = {
  key: 'acme',
  tenantId: 'acme',
  app: null,
  cluster: 'main',
  forceRefresh: false,
}
// Static, made-up AWS credentials: signing is local, nothing reaches AWS.
const awsCredentials = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
}

describe('Function: rdsIamCredentials', () => {
  let sign: jest.SpiedFunction<Signer['getAuthToken']>
  beforeEach(() => {
    jest.useFakeTimers({ now: new Date('2026-11-26T12:00:00Z'), doNotFake: ['nextTick', 'setImmediate'] })
    sign = jest.spyOn(Signer.prototype, 'getAuthToken')
  })
  afterEach(() => {
    sign.mockRestore()
    jest.useRealTimers()
  })

  const provider = () =>
    rdsIamCredentials({
      host: 'db.cluster.eu-west-1.rds.amazonaws.com',
      user: 'app_iam',
      region: 'eu-west-1',
      awsCredentials,
      clock: { now: () => Date.now() },
    })

  it('signs a token for the host, port and user, and says it needs TLS', async () => {
    const credentials = provider()

    const { user, password } = await credentials(request)

    expect(credentials.requiresTls).toBe(true)
    expect(user).toBe('app_iam')
    expect(password).toMatch(
      /^db\.cluster\.eu-west-1\.rds\.amazonaws\.com:5432\/\?Action=connect&DBUser=app_iam&/,
    )
    expect(password).toContain('X-Amz-Credential=AKIDEXAMPLE%2F20261126%2Feu-west-1%2Frds-db%2Faws4_request')
    expect(password).toContain('X-Amz-Expires=900')
  })

  it('reuses the token for 10 minutes and re-signs after', async () => {
    const credentials = provider()

    const first = await credentials(request)
    jest.setSystemTime(new Date('2026-11-26T12:09:59Z'))
    const reused = await credentials(request)
    jest.setSystemTime(new Date('2026-11-26T12:10:01Z'))
    const resigned = await credentials(request)

    expect(reused.password).toBe(first.password)
    expect(resigned.password).not.toBe(first.password)
    expect(resigned.password).toContain('X-Amz-Date=20261126T121001Z')
    expect(sign).toHaveBeenCalledTimes(2)
  })

  it('shares one signing among concurrent callers, and re-signs when forced', async () => {
    const credentials = provider()

    await Promise.all(Array.from({ length: 50 }, () => credentials(request)))
    await credentials({ ...request, forceRefresh: true })

    expect(sign).toHaveBeenCalledTimes(2)
  })

  it('after a refusal signs a new token, which later calls reuse', async () => {
    const credentials = provider()
    const first = await credentials(request)
    await credentials(request)
    expect(sign).toHaveBeenCalledTimes(1)

    jest.setSystemTime(new Date('2026-11-26T12:00:05Z'))
    const refreshed = await credentials({ ...request, forceRefresh: true, refused: first })
    const later = await credentials(request)

    expect(refreshed.password).not.toBe(first.password)
    expect(later.password).toBe(refreshed.password)
    expect(sign).toHaveBeenCalledTimes(2)
  })
})
