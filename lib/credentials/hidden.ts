import type { Credentials } from '../types'

/**
 * Credentials whose password is non-enumerable: it stays out of JSON.stringify, console.log,
 * util.inspect and object spreads, as pg does with its own copy.
 */
export function hiddenCredentials(user: string, password: string): Credentials {
  const credentials = { user } as Credentials
  Object.defineProperty(credentials, 'password', { value: password, enumerable: false })
  return credentials
}

export const sameCredentials = (a: Credentials, b: Credentials): boolean =>
  a.user === b.user && a.password === b.password
