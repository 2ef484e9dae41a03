// The TLS modes as options for Node's tls module (tls.ts): what each mode checks, and a CA bundle
// that cannot be read refused with its cause.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { InvalidOptionsError } from '../../lib/errors'
import { sslFor, usesTls } from '../../lib/pool/tls'

describe('Function: sslFor', () => {
  it('maps disable to no TLS, require to an unchecked certificate, verify-full to a checked one', () => {
    expect(sslFor('disable')).toBe(false)
    expect(sslFor('require')).toEqual({ rejectUnauthorized: false })
    expect(sslFor('verify-full')).toEqual({ rejectUnauthorized: true })
  })

  it('checks the certificate against the CA bundle it reads for verify-full', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tenant-pools-ca-'))
    try {
      writeFileSync(join(dir, 'ca.pem'), 'the bundle')
      expect(sslFor('verify-full', join(dir, 'ca.pem'))).toEqual({
        rejectUnauthorized: true,
        ca: 'the bundle',
      })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('refuses a CA bundle it cannot read, naming the path and keeping the cause', () => {
    const path = join(tmpdir(), 'tenant-pools-no-such-ca.pem')
    let failure: unknown
    try {
      sslFor('verify-full', path)
    } catch (err) {
      failure = err
    }
    expect(failure).toBeInstanceOf(InvalidOptionsError)
    expect((failure as Error).message).toBe(`Cannot read the CA bundle at sslCaPath ${path}`)
    expect((failure as Error).cause).toMatchObject({ code: 'ENOENT' })
  })
})

describe('Function: usesTls', () => {
  it.each([
    [undefined, false],
    [false, false],
    ['disable', false],
    ['', true],
    ['require', true],
    [true, true],
    [{ rejectUnauthorized: true }, true],
  ])('%j → %j', (ssl, expected) => {
    expect(usesTls(ssl)).toBe(expected)
  })
})
