// A SCRAM-SHA-256 verifier computed here, as psql's \password does, so that CREATE/ALTER ROLE never
// carries the password itself: a server log with log_statement=ddl shows only the verifier.
// RFC 5802 and RFC 7677; PostgreSQL's format is SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto'

// PostgreSQL's default (scram_iterations).
const ITERATIONS = 4096

const hmac = (key: Buffer, text: string) => createHmac('sha256', key).update(text).digest()

/**
 * The verifier of `password`. Passwords here are generated base64url text, for which SASLprep (the
 * normalization RFC 5802 asks for) changes nothing.
 */
export function scramVerifier(
  password: string,
  salt: Buffer = randomBytes(16),
  iterations = ITERATIONS,
): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256')
  const storedKey = createHash('sha256').update(hmac(salted, 'Client Key')).digest()
  const serverKey = hmac(salted, 'Server Key')
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`
}
