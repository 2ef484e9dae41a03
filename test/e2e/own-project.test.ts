// The package as another project gets it: `npm pack`, examples/own-project copied out of the
// repository, the tarball installed there (nothing linked from here), type-checked, built, its
// catalog set up, and its handler answering from the test server. A broken exports map, missing
// types or a subpath that lost an export fails here, before anyone installs the package.
import { spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { databaseUrl, uniqueTenant, withAdmin } from '../support/db'

const repo = resolve(__dirname, '../..')
const example = join(repo, 'examples/own-project')

/** Runs a command to completion; a non-zero exit fails the test with its output. */
function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: 170_000 })
  if (r.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${r.status ?? r.signal}:\n${r.stdout}\n${r.stderr}`)
  }
  return r.stdout
}

// Invokes the built handler in a process of its own, as Lambda would, once per tenant, and prints
// the answers as JSON on the last line (the handler's logger, console, prints before). The registry
// is ended after, or the process would stay up on its idle pool.
const invoker = `
import { getTenantPools } from 'tenant-pools'
import { handler } from './dist/handler.js'

const answers = []
try {
  for (const tenant of process.argv.slice(2)) {
    const event = { headers: {}, requestContext: { authorizer: { jwt: { claims: { tenant_id: tenant }, scopes: [] } } } }
    const context = { awsRequestId: 'own-project-test', getRemainingTimeInMillis: () => 10_000 }
    answers.push(await handler(event, context))
  }
} finally {
  await getTenantPools().end()
}
process.stdout.write('\\n' + JSON.stringify(answers) + '\\n')
`

describe('examples/own-project, installed from the packed tarball', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tenant-pools-own-project-'))
  const tenant = uniqueTenant('own')
  const masterSchema = uniqueTenant('own_master')
  // The example reads everything from the environment, as in Lambda.
  const env = { ...process.env, DATABASE_URL: databaseUrl(), TENANT_POOLS_MASTER_SCHEMA: masterSchema }

  beforeAll(() => {
    // Only what a clone holds: not a node_modules, dist or tarball left by someone trying it by hand.
    cpSync(example, dir, {
      recursive: true,
      filter: (src) => !/^(node_modules|dist|.*\.tgz)$/.test(relative(example, src).split('/')[0] ?? ''),
    })
    // prepack builds dist/ first; the tarball lands where the example's `file:` dependency names it.
    run('npm', ['pack', '--pack-destination', dir], repo)
    expect(readdirSync(dir)).toContain('tenant-pools-0.1.0.tgz')
    // --prefer-offline: the example's own dependencies are the repository's versions, in npm's cache.
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], dir)
    writeFileSync(join(dir, 'invoke.mjs'), invoker)
  }, 180_000)

  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true })
    await withAdmin(async (admin) => {
      await admin.query(`DROP SCHEMA IF EXISTS ${masterSchema} CASCADE`)
      await admin.query(`DROP SCHEMA IF EXISTS tenant_${tenant} CASCADE`)
    })
  })

  it('type-checks against the package types and answers through the middleware and Kysely', () => {
    run('npm', ['run', 'typecheck'], dir)
    run('npm', ['run', 'build'], dir)
    run('npm', ['run', 'setup', '--', tenant], dir, env)
    // setup made the catalog row and the schema; one note in it, written from here.
    return withAdmin(async (admin) => {
      await admin.query(`INSERT INTO tenant_${tenant}.notes (body) VALUES ('first')`)
      const out = run(process.execPath, ['invoke.mjs', tenant, 'nobody_here'], dir, env)
      const answers = JSON.parse(out.trim().split('\n').at(-1) ?? '')

      expect(answers).toEqual([
        {
          statusCode: 200,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ tenant, notes: [{ id: 1, body: 'first' }] }),
        },
        expect.objectContaining({ statusCode: 404 }),
      ])
      expect(JSON.parse(answers[1].body).error.code).toBe('TENANT_NOT_FOUND')
    })
  }, 120_000)
})
