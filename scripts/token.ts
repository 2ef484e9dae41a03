// npm run -s token -- <tenantId>: prints a token for the local stack (see scripts/local-jwt.ts).
import { resolve } from 'node:path'
import { localToken } from './local-jwt'

const tenantId = process.argv[2]
if (!tenantId) {
  process.stderr.write('usage: npm run -s token -- <tenantId>\n')
  process.exit(2)
}
localToken(resolve(process.env.TENANT_POOLS_LOCAL_DIR ?? '.local'), tenantId).then((t) =>
  process.stdout.write(`${t}\n`),
)
