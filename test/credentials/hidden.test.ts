import { hiddenCredentials, sameCredentials } from '../../lib/credentials/hidden'

describe('Function: sameCredentials', () => {
  it('is true only when both the user and the password match', () => {
    const a = hiddenCredentials('app', 'one')

    expect(sameCredentials(a, hiddenCredentials('app', 'one'))).toBe(true)
    expect(sameCredentials(a, hiddenCredentials('app', 'two'))).toBe(false)
    expect(sameCredentials(a, hiddenCredentials('other', 'one'))).toBe(false)
  })
})
