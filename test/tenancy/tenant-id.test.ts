import fc from 'fast-check'
import { InvalidTenantError } from '../../lib'
import {
  assertApp,
  assertSchemaName,
  assertTenantId,
  MAX_TENANT_ID_LENGTH,
  poolKey,
} from '../../lib/tenancy/tenant-id'

const valid = fc.stringMatching(/^[a-z0-9_]{1,48}$/)

describe('Module: tenant-id', () => {
  describe('Function: assertTenantId', () => {
    it('accepts every id of 1 to 48 characters from a-z, 0-9 and _', () => {
      fc.assert(
        fc.property(valid, (id) => {
          expect(() => assertTenantId(id)).not.toThrow()
        }),
      )
    })

    it('rejects every string with a character outside the alphabet', () => {
      const bad = fc
        .tuple(
          fc.string({ maxLength: 20 }),
          fc.string({ minLength: 1, maxLength: 3 }),
          fc.string({ maxLength: 20 }),
        )
        .map(([a, b, c]) => a + b + c)
        .filter((s) => !/^[a-z0-9_]*$/.test(s))
      fc.assert(
        fc.property(bad, (id) => {
          expect(() => assertTenantId(id)).toThrow(InvalidTenantError)
        }),
      )
    })

    it('rejects ids longer than the maximum, and the empty id', () => {
      expect(() => assertTenantId('a'.repeat(MAX_TENANT_ID_LENGTH))).not.toThrow()
      expect(() => assertTenantId('a'.repeat(MAX_TENANT_ID_LENGTH + 1))).toThrow(InvalidTenantError)
      expect(() => assertTenantId('')).toThrow(InvalidTenantError)
    })

    // The pattern anchored at both ends, one or more characters: a bad character first, last or
    // alone is refused, and a valid id of many characters taken.
    it.each(['acme;', ';acme', 'ac me', 'acme\n', '-', 'Acme'])('rejects %p', (id) => {
      expect(() => assertTenantId(id)).toThrow(InvalidTenantError)
    })

    it('takes an id of several characters', () => {
      expect(() => assertTenantId('acme_2')).not.toThrow()
    })

    it.each([null, undefined, 1, {}, [], true])('rejects the non-string %p', (value) => {
      expect(() => assertTenantId(value)).toThrow(InvalidTenantError)
    })
  })

  describe('Function: assertApp', () => {
    it('uses the same alphabet with a shorter bound', () => {
      expect(() => assertApp('web_2')).not.toThrow()
      expect(() => assertApp('a'.repeat(33))).toThrow(InvalidTenantError)
      expect(() => assertApp('Web')).toThrow(InvalidTenantError)
    })

    it('says what an app name may be (the message a caller gets with its 400)', () => {
      expect(() => assertApp('web!')).toThrow('Invalid app name: use 1 to 32 characters from a-z, 0-9 and _')
    })
  })

  describe('Function: assertSchemaName', () => {
    it('rejects what PostgreSQL cannot take as an identifier', () => {
      expect(() => assertSchemaName('tenant_acme')).not.toThrow()
      expect(() => assertSchemaName('')).toThrow(InvalidTenantError)
      expect(() => assertSchemaName('a\0b')).toThrow(InvalidTenantError)
      expect(() => assertSchemaName('é'.repeat(32))).toThrow(InvalidTenantError) // 64 bytes
      expect(() => assertSchemaName(`${'é'.repeat(31)}a`)).not.toThrow() // 63 bytes, the most PostgreSQL keeps
      expect(() => assertSchemaName(42)).toThrow(InvalidTenantError)
      expect(() => assertSchemaName('')).toThrow(/schemaFor returned an unusable schema name/)
    })
  })

  describe('Function: poolKey', () => {
    it('is the tenant id, or tenant:app', () => {
      expect(poolKey('acme')).toBe('acme')
      expect(poolKey('acme', 'web')).toBe('acme:web')
    })

    it('never maps two different (tenant, app) pairs to one key', () => {
      fc.assert(
        fc.property(
          valid,
          fc.option(valid, { nil: undefined }),
          valid,
          fc.option(valid, { nil: undefined }),
          (t1, a1, t2, a2) => {
            fc.pre(t1 !== t2 || a1 !== a2)
            expect(poolKey(t1, a1)).not.toBe(poolKey(t2, a2))
          },
        ),
      )
    })
  })
})
