// Validated scopes (scopes.ts): the key and shape of a scope on each cluster and access, which calls
// share one scope object, and the bound on what is cached.
import { InvalidTenantError, UnknownClusterError } from '../../lib/errors'
import { MAX_CACHED_SCOPES, ValidatedScopes } from '../../lib/registry/scopes'

const scopes = () =>
  new ValidatedScopes(
    (id) => `tenant_${id}`,
    new Map([
      ['main', { name: 'main', hasReader: false }],
      ['b', { name: 'b', hasReader: true }],
    ]),
    'main',
  )

describe('Class: ValidatedScopes', () => {
  it.each([
    [undefined, undefined, false, 'acme', 'main', false, false],
    ['web', undefined, false, 'acme:web', 'main', false, false],
    [undefined, 'main', false, 'acme', 'main', false, false],
    [undefined, undefined, true, 'acme/read-only', 'main', true, false],
    [undefined, 'main', true, 'acme/read-only', 'main', true, false],
    [undefined, 'b', false, 'acme@b', 'b', false, false],
    ['web', 'b', true, 'acme:web@b/reader', 'b', true, true],
  ])('app %s on cluster %s, read-only %s: key %s', (app, cluster, readOnly, key, on, ro, onReader) => {
    expect(scopes().scope('acme', app, cluster, readOnly)).toEqual({
      key,
      tenantId: 'acme',
      app: app ?? null,
      schema: 'tenant_acme',
      cluster: on,
      readOnly: ro,
      onReader,
    })
  })

  it('gives the main cluster’s writer scope as one object, named or not', () => {
    const s = scopes()
    const base = s.scope('acme', undefined)
    expect(s.scope('acme', undefined, 'main')).toBe(base)
    expect(s.scope('acme', undefined, undefined, false)).toBe(base)
    expect(s.scope('acme', undefined, 'b')).toBe(s.scope('acme', undefined, 'b'))
    expect(s.scope('acme', undefined, 'b')).not.toBe(base)
  })

  it('falls a reader scope back to its writer in read-only sessions, keyed apart', () => {
    const s = scopes()
    const reader = s.scope('acme', undefined, 'b', true)
    expect(s.variant(reader, 'b', 'read-only')).toMatchObject({
      key: 'acme@b/read-only',
      readOnly: true,
      onReader: false,
    })
    expect(s.variant(s.scope('acme', undefined), 'main', 'write')).toMatchObject({
      key: 'acme',
      readOnly: false,
    })
  })

  it('refuses an unknown cluster and an invalid id, before caching anything', () => {
    const s = scopes()
    expect(() => s.scope('acme', undefined, 'c')).toThrow(UnknownClusterError)
    expect(() => s.scope('acme:web', undefined)).toThrow(InvalidTenantError)
    expect(() => s.scope('acme', '')).toThrow(InvalidTenantError)
  })

  it(`keeps up to ${MAX_CACHED_SCOPES} tenants' scopes, then starts over`, () => {
    const s = scopes()
    const first = s.scope('t0', undefined)
    for (let i = 1; i < MAX_CACHED_SCOPES; i++) s.scope(`t${i}`, undefined)
    // Full, not over: still the same object, and finding it adds nothing.
    expect(s.scope('t0', undefined)).toBe(first)
    s.scope(`t${MAX_CACHED_SCOPES}`, undefined)
    const again = s.scope('t0', undefined)
    expect(again).not.toBe(first)
    expect(again).toEqual(first)
  })

  it(`keeps up to ${MAX_CACHED_SCOPES} variants, then starts over, without losing the writer scopes`, () => {
    const s = scopes()
    const base = s.scope('acme', undefined)
    const first = s.variant(base, 'c0', 'write')
    for (let i = 1; i < MAX_CACHED_SCOPES; i++) s.variant(base, `c${i}`, 'write')
    expect(s.variant(base, 'c0', 'write')).toBe(first)
    s.variant(base, `c${MAX_CACHED_SCOPES}`, 'write')
    expect(s.variant(base, 'c0', 'write')).not.toBe(first)
    expect(s.scope('acme', undefined)).toBe(base)
  })
})
