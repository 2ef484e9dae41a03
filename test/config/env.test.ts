import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager'
import { InvalidOptionsError, libraryVariables, optionsFromEnv, prewarmFromEnv } from '../../lib'
import { readVariable, runtimeFromEnv, trustHeaderFromEnv } from '../../lib/config/env'
import type { CredentialsRequest } from '../../lib/types'
import { localSecrets, rdsSecret, sdkEnvFor } from '../support/secrets'

describe('Module: env', () => {
  describe('Function: readVariable', () => {
    it('refuses a name that is not one of the library variables, naming it', () => {
      expect(() => readVariable({ NOT_OURS: 'x' }, 'NOT_OURS')).toThrow(
        "NOT_OURS is not a variable of the library's (lib/config/env.ts)",
      )
    })

    it.each([
      ['a string', 'TENANT_POOLS_STAGE', 'prod', 'prod'],
      ['a number', 'TENANT_POOLS_BUDGET', '8', 8],
      ['a negative number', 'TENANT_POOLS_BUDGET', '-3', -3],
      ['true', 'TENANT_POOLS_PROXY_SAFE', 'true', true],
      ['false', 'TENANT_POOLS_PROXY_SAFE', 'false', false],
    ])('reads %s by its kind', (_, name, raw, expected) => {
      expect(readVariable({ [name]: raw }, name)).toBe(expected)
    })

    it.each(['TENANT_POOLS_STAGE', 'TENANT_POOLS_BUDGET', 'TENANT_POOLS_PROXY_SAFE'])(
      'gives undefined for %s unset or empty',
      (name) => {
        expect(readVariable({}, name)).toBeUndefined()
        expect(readVariable({ [name]: '' }, name)).toBeUndefined()
      },
    )

    it('refuses a malformed flag or integer with a message naming the variable, never the value', () => {
      expect(() => readVariable({ TENANT_POOLS_PROXY_SAFE: 'TRUE' }, 'TENANT_POOLS_PROXY_SAFE')).toThrow(
        new InvalidOptionsError('TENANT_POOLS_PROXY_SAFE must be true or false'),
      )
      expect(() => readVariable({ TENANT_POOLS_BUDGET: '2.5' }, 'TENANT_POOLS_BUDGET')).toThrow(
        new InvalidOptionsError('TENANT_POOLS_BUDGET must be an integer'),
      )
    })
  })

  describe('Constant: libraryVariables', () => {
    it('lists the option variables, the old names and the others, each with its kind', () => {
      expect(libraryVariables).toMatchObject({
        DATABASE_URL: 'string',
        TENANT_POOLS_MAX_PER_SCOPE: 'number',
        TENANT_POOLS_KEEP_FULL_CONNECTION: 'boolean',
        TENANT_POOLS_MAX_PER_POOL: 'number',
        TENANT_POOLS_POOL_TTL_MS: 'number',
        TENANT_POOLS_TRUST_TENANT_HEADER: 'boolean',
        TENANT_POOLS_PREWARM_TIMEOUT_MS: 'number',
        IS_OFFLINE: 'string',
      })
      expect(Object.isFrozen(libraryVariables)).toBe(true)
    })
  })

  describe('Function: optionsFromEnv, credentials', () => {
    it('gives no credentials without TENANT_POOLS_SECRET_ID or a pattern', () => {
      // Not even a key set to undefined: spread after options of one's own, it would wipe theirs.
      expect('credentials' in optionsFromEnv({})).toBe(false)
    })

    it.each([
      ['a secret id', { TENANT_POOLS_SECRET_ID: 'app/master' }],
      ['a pattern', { TENANT_POOLS_TENANT_SECRET_PATTERN: 'app/{tenantId}' }],
    ])('gives a credentials provider for %s', (_, env) => {
      expect(typeof optionsFromEnv(env).credentials).toBe('function')
    })

    it('refuses a pattern without {tenantId}, naming the variable', () => {
      expect(() => optionsFromEnv({ TENANT_POOLS_TENANT_SECRET_PATTERN: 'app/tenant' })).toThrow(
        new InvalidOptionsError('TENANT_POOLS_TENANT_SECRET_PATTERN must contain {tenantId}'),
      )
    })
  })

  describe('Function: optionsFromEnv, a tenant secret that does not exist', () => {
    const saved = { ...process.env }
    let sm: Awaited<ReturnType<typeof localSecrets>>
    const request = (tenantId: string) =>
      ({
        key: tenantId,
        tenantId,
        app: null,
        cluster: 'main',
        forceRefresh: false,
        hasOwnRole: async () => false,
      }) as CredentialsRequest
    const env = {
      TENANT_POOLS_SECRET_ID: 'env-test/master',
      TENANT_POOLS_TENANT_SECRET_PATTERN: 'env-test/{tenantId}',
    }

    beforeAll(async () => {
      sm = await localSecrets()
      Object.assign(process.env, {
        ...sdkEnvFor(sm.server.url),
      })
      await sm.client.send(
        new CreateSecretCommand({ Name: 'env-test/master', SecretString: rdsSecret('master', 'pw') }),
      )
    })

    afterAll(async () => {
      process.env = { ...saved }
      await sm.server.close()
    })

    it('is refused without TENANT_POOLS_TENANT_SECRET_FALLBACK: no fallback to the wider secret by default', async () => {
      await expect(optionsFromEnv(env).credentials?.(request('acme'))).rejects.toThrow(/env-test\/acme/)
    })

    it('falls back to TENANT_POOLS_SECRET_ID with TENANT_POOLS_TENANT_SECRET_FALLBACK true', async () => {
      const credentials = optionsFromEnv({ ...env, TENANT_POOLS_TENANT_SECRET_FALLBACK: 'true' }).credentials
      await expect(credentials?.(request('acme'))).resolves.toMatchObject({ user: 'master' })
    })
  })

  describe('Function: prewarmFromEnv', () => {
    it('is off (undefined) unless TENANT_POOLS_PREWARM is true', () => {
      expect(prewarmFromEnv({})).toBeUndefined()
      expect(prewarmFromEnv({ TENANT_POOLS_PREWARM: 'false', TENANT_POOLS_PREWARM_TIMEOUT_MS: '500' })).toBe(
        undefined,
      )
    })

    it('on, gives a 1000 ms bound by default, or the one given', () => {
      expect(prewarmFromEnv({ TENANT_POOLS_PREWARM: 'true' })).toEqual({ timeoutMs: 1000 })
      expect(
        prewarmFromEnv({ TENANT_POOLS_PREWARM: 'true', TENANT_POOLS_PREWARM_TIMEOUT_MS: '250' }),
      ).toEqual({
        timeoutMs: 250,
      })
    })

    it.each(['1', '1000'])('takes a bound of %s ms, the edges of the range', (value) => {
      expect(
        prewarmFromEnv({ TENANT_POOLS_PREWARM: 'true', TENANT_POOLS_PREWARM_TIMEOUT_MS: value }),
      ).toEqual({
        timeoutMs: Number(value),
      })
    })

    it.each(['0', '1001', '-5'])('refuses a bound of %s ms, even when off', (value) => {
      expect(() => prewarmFromEnv({ TENANT_POOLS_PREWARM_TIMEOUT_MS: value })).toThrow(
        new InvalidOptionsError('TENANT_POOLS_PREWARM_TIMEOUT_MS must be between 1 and 1000'),
      )
    })
  })

  describe('Function: trustHeaderFromEnv', () => {
    it.each([
      ['trusts with the variable true', { TENANT_POOLS_TRUST_TENANT_HEADER: 'true' }, true],
      [
        'does not trust with the variable false, even offline',
        { TENANT_POOLS_TRUST_TENANT_HEADER: 'false', IS_OFFLINE: 'true' },
        false,
      ],
      ['trusts under serverless-offline without the variable', { IS_OFFLINE: 'true' }, true],
      ['does not trust with IS_OFFLINE other than true', { IS_OFFLINE: '1' }, false],
      ['does not trust with nothing set', {}, false],
    ])('%s', (_, env, expected) => {
      expect(trustHeaderFromEnv(env)).toBe(expected)
    })
  })

  describe('Function: runtimeFromEnv', () => {
    it('in Lambda: the function name set, not offline, the stage read', () => {
      expect(runtimeFromEnv({ AWS_LAMBDA_FUNCTION_NAME: 'orders-list', TENANT_POOLS_STAGE: 'prod' })).toEqual(
        {
          inLambda: true,
          offline: false,
          stage: 'prod',
        },
      )
    })

    it('outside Lambda: no function name, offline only when IS_OFFLINE is true', () => {
      expect(runtimeFromEnv({})).toEqual({ inLambda: false, offline: false, stage: undefined })
      expect(runtimeFromEnv({ IS_OFFLINE: 'true' })).toEqual({
        inLambda: false,
        offline: true,
        stage: undefined,
      })
    })
  })

  describe('Function: optionsFromEnv, TENANT_POOLS_CLUSTERS', () => {
    it('names the cluster and the key at fault', () => {
      expect(() =>
        optionsFromEnv({ TENANT_POOLS_CLUSTERS: '{"b":{"host":"x","maxConnections":0}}' }),
      ).toThrow(/^TENANT_POOLS_CLUSTERS is invalid at "b\.maxConnections": /)
    })

    it('names the key at fault in the spelled form (an empty reader)', () => {
      expect(() => optionsFromEnv({ TENANT_POOLS_CLUSTERS: '{"b":{"reader":""}}' })).toThrow(
        /^TENANT_POOLS_CLUSTERS is invalid at "b\.reader": /,
      )
    })

    it('refuses JSON that is not an object of clusters, with the message saying what it must be', () => {
      expect(() => optionsFromEnv({ TENANT_POOLS_CLUSTERS: '{b:' })).toThrow(
        new InvalidOptionsError('TENANT_POOLS_CLUSTERS must be a JSON object of clusters by name'),
      )
    })

    it('keeps a cluster without a secret id as written, with no credentials of its own', () => {
      const o = optionsFromEnv({ TENANT_POOLS_CLUSTERS: '{"b":{"host":"b.example"}}' })
      expect(o.clusters).toEqual({ b: { host: 'b.example' } })
    })
  })
})
