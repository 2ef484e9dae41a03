import { inspect } from 'node:util'
import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
  SecretsManagerServiceException,
} from '@aws-sdk/client-secrets-manager'
import { mockClient } from 'aws-sdk-client-mock'
import type { CredentialsRequest } from '../../lib'
import { SecretUnreadableError, secretsManagerCredentials } from '../../lib'

const PASSWORD = 'pw-Unit-7f3a9c'
const secret = (username: string, password: string) =>
  JSON.stringify({ username, password, host: 'db', port: 5432, dbname: 'app', engine: 'postgres' })
// The SDK has no class for it: access denied arrives as a service exception with this name.
const accessDenied = () =>
  new SecretsManagerServiceException({
    name: 'AccessDeniedException',
    $fault: 'client',
    $metadata: {},
    message: 'no',
  })
const request = (over: Partial<CredentialsRequest> = {}): CredentialsRequest => ({
  key: 'acme',
  tenantId: 'acme',
  app: null,
  cluster: 'main',
  forceRefresh: false,
  ...over,
})

describe('Function: secretsManagerCredentials', () => {
  const sm = mockClient(SecretsManagerClient)
  let now = 0
  const clock = { now: () => now }
  const provider = (over = {}) =>
    secretsManagerCredentials({
      secretId: 'app/master',
      client: new SecretsManagerClient({}),
      clock,
      ...over,
    })

  beforeEach(() => {
    sm.reset()
    now = 1_000_000
  })

  describe('caching', () => {
    it('reads a secret once within maxAgeMs and again after it', async () => {
      // Prepare
      sm.on(GetSecretValueCommand).resolves({ SecretString: secret('app', PASSWORD) })
      const credentials = provider()

      // Act
      const first = await credentials(request())
      now += 299_000
      await credentials(request())
      now += 2_000
      await credentials(request())

      // Assess
      expect(first).toMatchObject({ user: 'app', password: PASSWORD })
      expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(2)
    })

    it('makes one GetSecretValue for 100 concurrent cold calls', async () => {
      sm.on(GetSecretValueCommand).callsFake(async () => {
        await new Promise((r) => setTimeout(r, 10))
        return { SecretString: secret('app', PASSWORD) }
      })
      const credentials = provider()

      const all = await Promise.all(Array.from({ length: 100 }, () => credentials(request())))

      expect(new Set(all.map((c) => c.password))).toEqual(new Set([PASSWORD]))
      expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1)
    })

    it('does not cache a failed fetch', async () => {
      sm.on(GetSecretValueCommand)
        .rejectsOnce(accessDenied())
        .resolves({ SecretString: secret('app', PASSWORD) })
      const credentials = provider()

      await expect(credentials(request())).rejects.toBeInstanceOf(SecretUnreadableError)
      await expect(credentials(request())).resolves.toMatchObject({ user: 'app' })
      expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(2)
    })
  })

  describe('refresh after 28P01', () => {
    it('re-reads the secret once for many concurrent refusals of the same credentials', async () => {
      sm.on(GetSecretValueCommand, { VersionStage: 'AWSCURRENT' })
        .resolvesOnce({ SecretString: secret('app', 'old') })
        .resolves({ SecretString: secret('app', 'new') })
      const credentials = provider()
      const refused = await credentials(request())

      const refreshed = await Promise.all(
        Array.from({ length: 20 }, () => credentials(request({ forceRefresh: true, refused }))),
      )

      expect(refreshed.map((c) => c.password)).toEqual(Array(20).fill('new'))
      expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(2)
    })

    it('returns credentials another caller already refreshed, without reading again', async () => {
      sm.on(GetSecretValueCommand, { VersionStage: 'AWSCURRENT' })
        .resolvesOnce({ SecretString: secret('app', 'old') })
        .resolves({ SecretString: secret('app', 'new') })
      const credentials = provider()
      const refused = await credentials(request())
      await credentials(request({ forceRefresh: true, refused }))

      // A connection that started with the old password is refused later, after the refresh.
      const late = await credentials(request({ forceRefresh: true, refused }))

      expect(late.password).toBe('new')
      expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(2)
    })

    it('takes AWSPENDING when AWSCURRENT still holds the refused password (rotation under way)', async () => {
      sm.on(GetSecretValueCommand, { VersionStage: 'AWSCURRENT' }).resolves({
        SecretString: secret('app', 'old'),
      })
      sm.on(GetSecretValueCommand, { VersionStage: 'AWSPENDING' }).resolves({
        SecretString: secret('app', 'pending'),
      })
      const credentials = provider()
      const refused = await credentials(request())

      const refreshed = await credentials(request({ forceRefresh: true, refused }))

      expect(refreshed.password).toBe('pending')
      expect(sm.commandCalls(GetSecretValueCommand).map((c) => c.args[0].input.VersionStage)).toEqual([
        'AWSCURRENT',
        'AWSCURRENT',
        'AWSPENDING',
      ])
    })

    it('keeps AWSCURRENT when no rotation is pending', async () => {
      sm.on(GetSecretValueCommand, { VersionStage: 'AWSCURRENT' }).resolves({
        SecretString: secret('app', 'same'),
      })
      sm.on(GetSecretValueCommand, { VersionStage: 'AWSPENDING' }).rejects(
        new ResourceNotFoundException({ message: 'no such label', $metadata: {} }),
      )
      const credentials = provider()
      const refused = await credentials(request())

      await expect(credentials(request({ forceRefresh: true, refused }))).resolves.toMatchObject({
        password: 'same',
      })
    })

    it('re-reads AWSCURRENT when forced without naming refused credentials', async () => {
      sm.on(GetSecretValueCommand).resolves({ SecretString: secret('app', 'x') })
      const credentials = provider()
      await credentials(request())

      await credentials(request({ forceRefresh: true }))

      expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(2)
    })
  })

  describe('per-tenant secrets', () => {
    it('reads a tenant’s own secret and the shared one for the master pool', async () => {
      sm.on(GetSecretValueCommand, { SecretId: 'app/tenants/acme' }).resolves({
        SecretString: secret('acme_role', 'a'),
      })
      sm.on(GetSecretValueCommand, { SecretId: 'app/master' }).resolves({ SecretString: secret('app', 'm') })
      const credentials = provider({ secretIdFor: (id: string) => `app/tenants/${id}` })

      const tenant = await credentials(request())
      const master = await credentials(request({ key: '$master', tenantId: null }))

      expect([tenant.user, master.user]).toEqual(['acme_role', 'app'])
    })

    it('refuses the master pool a secret when only secretIdFor is given, saying so', async () => {
      const credentials = secretsManagerCredentials({
        secretIdFor: (id) => `app/tenants/${id}`,
        client: new SecretsManagerClient({}),
      })

      await expect(credentials(request({ key: '$master', tenantId: null }))).rejects.toThrow(
        /no secretId for the master pool/,
      )
      expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(0)
    })

    it('forgets what it read on clear()', async () => {
      sm.on(GetSecretValueCommand).resolves({ SecretString: secret('app', PASSWORD) })
      const credentials = provider()

      await credentials(request())
      await credentials(request())
      expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1)
      credentials.clear()
      await credentials(request())
      expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(2)
    })

    it('needs at least one secret id', () => {
      expect(() => secretsManagerCredentials({})).toThrow(/secretId, secretIdFor, or both/)
    })
  })

  describe('unreadable secrets', () => {
    it.each([
      ['not JSON', { SecretString: `not json ${PASSWORD}` }, /not JSON/],
      ['missing password', { SecretString: JSON.stringify({ username: 'app' }) }, /field\(s\): password/],
      ['binary', { SecretBinary: new Uint8Array([1, 2]) }, /no SecretString/],
    ])('%s: a typed error naming the secret, never its value', async (_label, output, message) => {
      sm.on(GetSecretValueCommand).resolves(output)
      const err = await provider()(request()).catch((e: unknown) => e)

      expect(err).toBeInstanceOf(SecretUnreadableError)
      expect(err).toMatchObject({ code: 'SECRET_UNREADABLE', secretId: 'app/master' })
      expect((err as Error).message).toMatch(message)
      expect((err as Error).message).toMatch(/app\/master/)
      expect(inspect(err, { depth: 5 })).not.toContain(PASSWORD)
    })

    it.each([
      [
        'not found',
        new ResourceNotFoundException({ message: 'gone', $metadata: {} }),
        /ResourceNotFoundException/,
      ],
      ['access denied', accessDenied(), /AccessDeniedException/],
    ])('%s: names the secret and the SDK error', async (_label, sdkError, message) => {
      sm.on(GetSecretValueCommand).rejects(sdkError)
      const err = await provider()(request()).catch((e: unknown) => e)

      expect(err).toBeInstanceOf(SecretUnreadableError)
      expect((err as Error).message).toMatch(message)
      expect((err as Error).cause).toBe(sdkError)
    })
  })

  it('keeps the password out of JSON, inspect and spreads', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: secret('app', PASSWORD) })
    const credentials = await provider()(request())

    expect(credentials.password).toBe(PASSWORD)
    expect(JSON.stringify(credentials)).not.toContain(PASSWORD)
    expect(inspect(credentials)).not.toContain(PASSWORD)
    expect(JSON.stringify({ ...credentials })).not.toContain(PASSWORD)
  })
})

describe('Function: secretsManagerCredentials with fallbackToSecretId', () => {
  const sm = mockClient(SecretsManagerClient)
  beforeEach(() => sm.reset())

  it('uses the shared secret for a tenant that has no secret of its own, and only then', async () => {
    sm.on(GetSecretValueCommand, { SecretId: 'app/tenants/old' }).rejects(
      new ResourceNotFoundException({ message: 'none', $metadata: {} }),
    )
    sm.on(GetSecretValueCommand, { SecretId: 'app/tenants/new' }).resolves({
      SecretString: secret('tenant_new', 'n'),
    })
    sm.on(GetSecretValueCommand, { SecretId: 'app/master' }).resolves({ SecretString: secret('app', 'm') })
    const with_ = (fallbackToSecretId: boolean) =>
      secretsManagerCredentials({
        secretId: 'app/master',
        secretIdFor: (id) => `app/tenants/${id}`,
        fallbackToSecretId,
        client: new SecretsManagerClient({}),
      })
    const noRole = async () => false

    await expect(with_(true)(request({ tenantId: 'old', hasOwnRole: noRole }))).resolves.toMatchObject({
      user: 'app',
    })
    await expect(with_(true)(request({ tenantId: 'new', hasOwnRole: noRole }))).resolves.toMatchObject({
      user: 'tenant_new',
    })
    await expect(with_(false)(request({ tenantId: 'old', hasOwnRole: noRole }))).rejects.toBeInstanceOf(
      SecretUnreadableError,
    )
  })

  it.each([
    ['has a role of its own', async () => true],
    ['cannot be told apart', undefined],
    [
      'is asked about and the lookup fails',
      async () => {
        throw new Error('catalog unreachable')
      },
    ],
  ])('never falls back for a tenant whose secret is missing and that %s', async (_, hasOwnRole) => {
    sm.on(GetSecretValueCommand, { SecretId: 'app/tenants/own' }).rejects(
      new ResourceNotFoundException({ message: 'none', $metadata: {} }),
    )
    sm.on(GetSecretValueCommand, { SecretId: 'app/master' }).resolves({ SecretString: secret('app', 'm') })
    const credentials = secretsManagerCredentials({
      secretId: 'app/master',
      secretIdFor: (id) => `app/tenants/${id}`,
      fallbackToSecretId: true,
      client: new SecretsManagerClient({}),
    })

    const refusal = /role of its own|catalog unreachable/
    await expect(credentials(request({ tenantId: 'own', hasOwnRole }))).rejects.toThrow(refusal)
    // Refused after a rotation's refusal too (the forced path reads the secret again).
    await expect(
      credentials(request({ tenantId: 'own', hasOwnRole, forceRefresh: true, refused: undefined })),
    ).rejects.toThrow(refusal)
    // The shared secret was never read: nothing of it could reach the tenant's connection.
    expect(sm.commandCalls(GetSecretValueCommand, { SecretId: 'app/master' })).toHaveLength(0)
  })

  it('does not read a missing secret twice when the tenant’s secret is the shared one', async () => {
    sm.on(GetSecretValueCommand).rejects(new ResourceNotFoundException({ message: 'none', $metadata: {} }))
    const credentials = secretsManagerCredentials({
      secretId: 'app/master',
      secretIdFor: () => 'app/master',
      fallbackToSecretId: true,
      client: new SecretsManagerClient({}),
    })

    await expect(credentials(request())).rejects.toBeInstanceOf(SecretUnreadableError)
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1)
  })
})
