// npm start: the whole stack on this machine, in one command.
// 1. the embedded PostgreSQL (data kept under .local/pg), 2. the local Secrets Manager (.local/),
// 3. the master schema migrated and two demo tenants provisioned, 4. serverless-offline on :3000.
// TENANT_POOLS_LOCAL_CLUSTERS=2 adds a second PostgreSQL, cluster "b" (data under .local/pg-b), and
// places globex there (docs/clusters.md, "Locally").
// Ctrl-C (or SIGTERM) stops all of it and leaves no process behind.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager'
import { Client, escapeIdentifier, escapeLiteral } from 'pg'
import { migrateMaster, provisionTenant } from '../functions/admin/provision'
import { secretsManagerCredentials, TenantPools } from '../lib'
// @ts-expect-error: an ESM helper without type declarations, shared with the jest setup
import { reachableDataDir, startEmbeddedPostgres } from './embedded-postgres.mjs'
import { bindable, localConfig as config, livePid, localPorts, lockFile } from './local-config'
import { startLocalSecretsManager } from './local-secrets-manager'

const MASTER_SECRET = 'tenant-pools/local/master'
// Tenant traffic's login (serverless.yml's trafficSecretArn and trafficRole).
const TRAFFIC_SECRET = 'tenant-pools/local/tenant-traffic'
const TRAFFIC_ROLE = 'app_tenant'
const ADMIN_KEY_SECRET = 'tenant-pools/local/admin-key'
const log = (message: string) => process.stdout.write(`[start] ${message}\n`)

async function ensureSecret(
  client: SecretsManagerClient,
  name: string,
  value: () => string,
): Promise<string> {
  try {
    return (await client.send(new GetSecretValueCommand({ SecretId: name }))).SecretString as string
  } catch (err) {
    if (!(err instanceof ResourceNotFoundException)) throw err
    const secret = value()
    await client.send(new CreateSecretCommand({ Name: name, SecretString: secret }))
    return secret
  }
}

/**
 * A login role with `password` on the server at `superuserUrl` (the same on every cluster: one
 * secret logs in everywhere), then `grants`, each given its quoted name.
 */
async function ensureLoginRole(
  superuserUrl: string,
  role: string,
  password: string,
  grants: Array<(role: string) => string> = [],
): Promise<void> {
  const admin = new Client({ connectionString: superuserUrl })
  await admin.connect()
  try {
    const r = escapeIdentifier(role)
    const { rowCount } = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])
    if (!rowCount) await admin.query(`CREATE ROLE ${r} LOGIN`)
    await admin.query(`ALTER ROLE ${r} PASSWORD ${escapeLiteral(password)}`)
    for (const grant of grants) await admin.query(grant(r))
  } finally {
    await admin.end()
  }
}

/** The application role (the schema owner): may create schemas and owns what it creates. */
const APP_ROLE_GRANTS = [
  // Tenant admin may give a tenant its own role (POST /admin/tenants {"role": true}).
  (r: string) => `ALTER ROLE ${r} CREATEROLE`,
  // As rds_superuser has: see and end other roles' sessions (the reaper, tenant deprovisioning).
  (r: string) => `GRANT pg_signal_backend, pg_read_all_stats TO ${r}`,
  (r: string) => `GRANT CREATE ON DATABASE tenant_pools TO ${r}`,
  (r: string) => `GRANT CREATE, USAGE ON SCHEMA public TO ${r}`,
]

// Tenant traffic's role is granted nothing here: it owns nothing, and provisioning grants it the
// rows of each tenant schema and a read of the catalog.

/** An RDS-style secret for `username` on the main cluster, made with a new password if missing. */
const ensureLoginSecret = async (
  client: SecretsManagerClient,
  name: string,
  username: string,
): Promise<{ username: string; password: string }> =>
  JSON.parse(
    await ensureSecret(client, name, () =>
      JSON.stringify({
        engine: 'postgres',
        host: '127.0.0.1',
        port: config.pgPort,
        dbname: 'tenant_pools',
        username,
        password: randomBytes(18).toString('base64url'),
      }),
    ),
  )

/**
 * Refuses to start, saying why and what to change, when another npm start runs on this folder or a
 * port is taken: PostgreSQL itself only reports a taken port in its own log.
 */
async function preflight(): Promise<void> {
  const running = livePid(lockFile())
  if (running) throw new Error(`npm start is already running on ${config.dir} (pid ${running})`)
  for (const folder of ['pg', 'pg-b']) {
    const dataDir = reachableDataDir(join(config.dir, folder))
    const pid = livePid(join(dataDir, 'postmaster.pid'))
    if (pid) {
      throw new Error(
        `PostgreSQL is already running on ${dataDir} (pid ${pid}): is another npm start running?`,
      )
    }
  }
  for (const { port, variable, what } of localPorts()) {
    if (!(await bindable(port))) {
      throw new Error(
        `port ${port}, for ${what}, is in use: stop what listens there, or set ${variable} to another port`,
      )
    }
  }
}

async function main(): Promise<void> {
  mkdirSync(config.dir, { recursive: true })
  const stops: Array<() => Promise<unknown>> = []
  let offline: ChildProcess | undefined
  let stopping = false
  const stop = async (code: number) => {
    if (stopping) return
    stopping = true
    log('stopping')
    if (offline?.pid && offline.exitCode === null) {
      // serverless-offline runs in its own process group: end the whole group.
      try {
        process.kill(-offline.pid, 'SIGTERM')
      } catch {}
      await new Promise((r) => offline?.once('exit', r).once('error', r))
    }
    for (const s of stops.reverse()) await s().catch(() => {})
    process.exit(code)
  }
  // Ours alone: the embedded server is started with exitOnSignal false, so that its library does not
  // exit the process before this shutdown has run (it left .esbuild-offline-<pid> behind).
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stop(0))

  try {
    if (config.clusters !== '1' && config.clusters !== '2') {
      throw new Error(`TENANT_POOLS_LOCAL_CLUSTERS must be 1 or 2, not "${config.clusters.slice(0, 20)}"`)
    }
    await preflight()
    // npm run reset refuses to wipe the folder while this file names a live process.
    writeFileSync(lockFile(), String(process.pid))
    stops.push(async () => rmSync(lockFile(), { force: true }))
    const startCluster = async (folder: string, port: number) => {
      // As root in a private folder the data lives where the postgres user can reach it.
      const dataDir = reachableDataDir(join(config.dir, folder))
      const server = await startEmbeddedPostgres({
        dataDir,
        port,
        database: 'tenant_pools',
        exitOnSignal: false,
      })
      stops.push(() => server.stop())
      log(`PostgreSQL on 127.0.0.1:${port} (data in ${dataDir})`)
      return server
    }
    const pg = await startCluster('pg', config.pgPort)
    const pgB = config.clusters === '2' ? await startCluster('pg-b', config.pgPortB) : undefined
    // The functions' other clusters (lib's TENANT_POOLS_CLUSTERS); they log in with the master secret.
    const clusters = pgB ? { b: { host: '127.0.0.1', port: config.pgPortB } } : undefined
    if (clusters) process.env.TENANT_POOLS_CLUSTERS = JSON.stringify(clusters)

    const sm = await startLocalSecretsManager({ port: config.smPort, file: join(config.dir, 'secrets.json') })
    stops.push(() => sm.close())
    // The real SDK, pointed at the local server through the standard variable; children inherit it.
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.url,
      AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
      AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'local',
      AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
      // As Lambda sets it: Powertools counts cold starts only for on-demand environments.
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    })
    log(`Secrets Manager on ${sm.url} (secrets in ${join(config.dir, 'secrets.json')})`)

    const client = new SecretsManagerClient({})
    // The functions log in as `app`, not as the superuser: its password lives only in the secret.
    const master = await ensureLoginSecret(client, MASTER_SECRET, 'app')
    const traffic = await ensureLoginSecret(client, TRAFFIC_SECRET, TRAFFIC_ROLE)
    for (const server of pgB ? [pg, pgB] : [pg]) {
      await ensureLoginRole(server.url, master.username, master.password, APP_ROLE_GRANTS)
      await ensureLoginRole(server.url, traffic.username, traffic.password)
    }
    // Provisioning below grants tenant traffic its rights, as the admin functions do.
    process.env.TENANT_POOLS_TRAFFIC_ROLE = traffic.username
    const adminKey = await ensureSecret(client, ADMIN_KEY_SECRET, () => randomBytes(24).toString('base64url'))

    const pools = new TenantPools({
      host: '127.0.0.1',
      port: config.pgPort,
      database: 'tenant_pools',
      credentials: secretsManagerCredentials({ secretId: MASTER_SECRET, client }),
      clusters,
    })
    try {
      await migrateMaster(pools)
      // A new tenant goes to the cluster with the fewest: with two, acme on main and globex on b.
      for (const id of config.demoTenants) await provisionTenant(pools, id)
      // Tenants made by an earlier run get what provisioning now grants (tenant traffic's rights).
      const { rows } = await pools.master.query<{ id: string }>(
        `SELECT id FROM tenants WHERE status = 'active' AND moving_to IS NULL`,
      )
      for (const { id } of rows) if (!config.demoTenants.includes(id)) await provisionTenant(pools, id)
    } finally {
      await pools.end()
    }
    log(`master schema migrated; demo tenants: ${config.demoTenants.join(', ')}`)

    if (stopping) return
    // Bundles of its own: `serverless package` (or another stack) in this checkout must not replace
    // or delete them while this stack runs.
    const esbuildWorkDir = `.esbuild-offline-${process.pid}`
    stops.push(async () => rmSync(resolve(esbuildWorkDir), { recursive: true, force: true }))
    offline = spawn(
      process.execPath,
      [
        require.resolve('serverless/bin/serverless.js'),
        'offline',
        'start',
        '--stage',
        'local',
        '--httpPort',
        String(config.httpPort),
        '--lambdaPort',
        String(config.lambdaPort),
        '--websocketPort',
        String(config.websocketPort),
      ],
      {
        stdio: 'inherit',
        detached: true,
        env: {
          ...process.env,
          TENANT_POOLS_LOCAL_PGPORT: String(config.pgPort),
          // Where scripts/offline-authorizer.cjs finds the key local tokens are signed with.
          TENANT_POOLS_LOCAL_DIR: config.dir,
          TENANT_POOLS_ESBUILD_WORK_DIR: esbuildWorkDir,
          // The tenant comes from the token's claim, as deployed; from a header only with the
          // authorizer turned off (TENANT_POOLS_LOCAL_NO_AUTH=true).
          TENANT_POOLS_TRUST_TENANT_HEADER:
            process.env.TENANT_POOLS_LOCAL_NO_AUTH === 'true' ? 'true' : 'false',
        },
      },
    )
    offline.once('exit', (code) => {
      if (!stopping) {
        log(`serverless-offline exited (${code}); stopping`)
        void stop(code ?? 1)
      }
    })
    // The key goes to a file only readable by you, never to the terminal or a log.
    const keyFile = join(config.dir, 'admin-key')
    writeFileSync(keyFile, adminKey, { mode: 0o600 })
    log(`admin key in ${keyFile} (and in the local Secrets Manager as ${ADMIN_KEY_SECRET})`)
    // No password: the functions log in as `app`, whose password is only in the local Secrets Manager.
    log(`database: postgres://postgres@127.0.0.1:${config.pgPort}/tenant_pools (superuser postgres)`)
    log(`data: ${pg.dataDir}${pgB ? ` and ${pgB.dataDir}` : ''}; npm run reset wipes it once stopped`)
    log(`API on http://localhost:${config.httpPort} (ready once serverless-offline prints "Server ready")`)
    log(
      `try: curl -s localhost:${config.httpPort}/orders -H "Authorization: Bearer $(npm run -s token -- acme)"`,
    )
  } catch (err) {
    // What went wrong, not a stack trace.
    const why = err instanceof Error ? err.message : `could not start: ${String(err)}`
    process.stderr.write(`[start] could not start the local stack: ${why}\n`)
    await stop(1)
  }
}

void main()
