// Part of npm run bench:cold: the cold first answer, as a caller of a new environment waits for it.
// A fresh Node process is spawned, loads a handler (Lambda's init), and answers its first GET /orders
// against the database: TLS (verify-full), SCRAM, the credentials read from a local Secrets Manager
// behind a stated added delay (BENCH_SM_DELAY_MS, 40 ms by default: a Secrets Manager read from
// Lambda takes tens of milliseconds). Three arms, alternated in one run, their order rotating:
//   ours     the packaged orders list handler (serverless package), TENANT_POOLS_PREWARM off;
//   bare     a minimal hand-written handler doing the same work with bare pg (no middy, no
//            Powertools): the secret read, a connection, the catalog row, the page of orders;
//   prewarm  ours with TENANT_POOLS_PREWARM=true, and a gap (BENCH_PREWARM_GAP_MS, 1000) between
//            init and the first request, as provisioned concurrency leaves one.
// Each child reports its boot (process start to the driver's first line), its init (the handler's
// require) and its first and second invocations apart; the parent times spawn to first answer (less
// the gap). Medians. Targets (issue 31): ours ≤ 1.15× bare, spawn to first answer, no prewarm; with
// prewarm, the first invocation ≤ 1.5× a warm one. BENCH_FIRST_ANSWER_RUNS: runs per arm (11).
// BENCH_CPU_PROF_DIR: each child writes a CPU profile there (--cpu-prof, 100 µs samples), named by
// its arm, to find where its init and first invocation go; the timings then carry the profiler's cost.
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import { buildSync } from 'esbuild'
import { Client } from 'pg'
// @ts-expect-error: an ESM helper without type declarations, shared with the jest setup
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.mjs'
import { startLocalSecretsManager } from '../scripts/local-secrets-manager'
import { packageFunctions } from '../scripts/package-functions'
import { progress } from './progress'

const RUNS = Number(process.env.BENCH_FIRST_ANSWER_RUNS ?? 11)
const SM_DELAY_MS = Number(process.env.BENCH_SM_DELAY_MS ?? 40)
const GAP_MS = Number(process.env.BENCH_PREWARM_GAP_MS ?? 1000)
const node = process.env.BENCH_NODE ?? process.execPath
const PROF_DIR = process.env.BENCH_CPU_PROF_DIR
const TENANT = 'acme'
const SECRET_ID = 'cold/traffic'
const targets = { firstAnswer: 1.15, prewarmedFirst: 1.5 }

interface Parts {
  /** From the first invocation's start to the Secrets Manager request: the SDK's load, the JS before. */
  toSecretMs: number
  /** The Secrets Manager request (the added delay included). */
  secretMs: number
  /** From the secret to the database socket. */
  toConnectMs: number
  /** The connection (TCP, TLS, SCRAM), the statements and the answer. */
  connectToAnswerMs: number
}

interface Sample {
  spawnToAnswerMs: number
  bootMs: number
  initMs: number
  firstMs: number
  warmMs: number
  /** Init's start and end, the first invocation's start and answer, on the monotonic clock (µs). */
  marksUs: number[]
  /** Absent when the first invocation read no secret (a prewarm read it during init). */
  parts?: Parts
}

// The child: loads the handler, waits GAP_MS, answers two GET /orders, reports each part.
// Where its first invocation's time goes, from Node's diagnostics channels: the Secrets Manager
// request's start and end, then the database socket's creation (the first socket after the secret).
const driver = `
const { performance } = require('node:perf_hooks')
const bootMs = performance.now()
const seen = []
const dc = require('node:diagnostics_channel')
for (const name of ['http.client.request.start', 'http.client.response.finish', 'net.client.socket']) {
  dc.subscribe(name, () => seen.push([name, performance.now()]))
}
const event = {
  version: '2.0', rawPath: '/orders', headers: {}, queryStringParameters: undefined,
  requestContext: { http: { method: 'GET', path: '/orders' }, requestId: 'cold',
    authorizer: { jwt: { claims: { tenant_id: ${JSON.stringify(TENANT)} }, scopes: null } } },
}
const context = { awsRequestId: 'cold', functionName: 'tenant-pools-bench-cold', getRemainingTimeInMillis: () => 29000 }
const t0 = performance.now()
const handler = require(process.env.BENCH_BUNDLE)[process.env.BENCH_EXPORT]
const initMs = performance.now() - t0
setTimeout(async () => {
  const t1 = performance.now()
  const first = await handler(event, context)
  const answeredAt = performance.now()
  const firstMs = answeredAt - t1
  const at = (name, after) => seen.find(([n, t]) => n === name && t >= after)?.[1]
  const secretStart = at('http.client.request.start', t1)
  const secretEnd = secretStart === undefined ? undefined : at('http.client.response.finish', secretStart)
  const dbSocket = secretEnd === undefined ? undefined : at('net.client.socket', secretEnd)
  const parts = dbSocket === undefined ? undefined : {
    toSecretMs: secretStart - t1,
    secretMs: secretEnd - secretStart,
    toConnectMs: dbSocket - secretEnd,
    connectToAnswerMs: answeredAt - dbSocket,
  }
  process.stdout.write('answered\\n')
  const t2 = performance.now()
  const second = await handler(event, context)
  const warmMs = performance.now() - t2
  if (first.statusCode !== 200 || second.statusCode !== 200) {
    process.stderr.write('answered ' + first.statusCode + ' ' + first.body + '\\n')
    process.exit(1)
  }
  // The marks on the monotonic clock a CPU profile's timestamps use (µs), to cut it into parts.
  const clockUs = Number(process.hrtime.bigint() / 1000n) - performance.now() * 1000
  const marksUs = [t0, t0 + initMs, t1, answeredAt].map((ms) => Math.round(clockUs + ms * 1000))
  process.stdout.write(JSON.stringify({ bootMs, initMs, firstMs, warmMs, parts, marksUs }) + '\\n')
  process.exit(0)
}, Number(process.env.BENCH_GAP_MS))
`

// The minimal handler: what GET /orders does, by hand, with bare pg.
const bareSource = `
import { readFileSync } from 'node:fs'
import { Client } from 'pg'
let client: Client | undefined
export const list = async (event: any) => {
  const tenant = event.requestContext.authorizer.jwt.claims.tenant_id
  if (!client) {
    const { SecretsManagerClient, GetSecretValueCommand } = require('@aws-sdk/client-secrets-manager')
    const out = await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: process.env.TENANT_POOLS_SECRET_ID }))
    const { username, password } = JSON.parse(out.SecretString)
    const u = new URL(process.env.DATABASE_URL as string)
    const c = new Client({ host: u.hostname, port: Number(u.port), database: u.pathname.slice(1), user: username, password,
      ssl: { ca: readFileSync(process.env.TENANT_POOLS_SSL_CA_PATH as string) } })
    await c.connect()
    client = c
  }
  const catalog = await client.query('SELECT status, cluster, moving_to FROM public.tenants WHERE id = $1', [tenant])
  if (catalog.rows[0]?.status !== 'active') return { statusCode: 404, body: '' }
  const { rows } = await client.query(
    'SELECT id, reference, customer, status, total_cents, version, created_at, updated_at FROM tenant_' + tenant +
      '.orders WHERE deleted_at IS NULL AND ($1::timestamptz IS NULL OR (created_at, id) < ($1::timestamptz, $2::uuid)) ORDER BY created_at DESC, id DESC LIMIT $3',
    [null, null, 51],
  )
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ items: rows.slice(0, 50), nextCursor: null }) }
}
`

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[s.length >> 1] as number
}

let profiled = 0

function runChild(
  arm: string,
  bundle: string,
  exportName: string,
  env: Record<string, string>,
  gapMs: number,
) {
  const n = ++profiled
  const profile = PROF_DIR
    ? [
        '--cpu-prof',
        '--cpu-prof-interval=100',
        `--cpu-prof-dir=${PROF_DIR}`,
        `--cpu-prof-name=${arm}-${n}.cpuprofile`,
      ]
    : []
  return new Promise<Sample>((resolve, reject) => {
    const start = process.hrtime.bigint()
    let answeredAt: bigint | undefined
    const child = spawn(node, [...profile, '-e', driver], {
      env: { ...env, BENCH_BUNDLE: bundle, BENCH_EXPORT: exportName, BENCH_GAP_MS: String(gapMs) },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (d) => {
      stderr += d
    })
    let report: Omit<Sample, 'spawnToAnswerMs'> | undefined
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line === 'answered') answeredAt = process.hrtime.bigint()
      else report = JSON.parse(line)
    })
    child.on('close', (code) => {
      if (code !== 0 || !report || answeredAt === undefined) {
        reject(new Error(`${exportName} in ${bundle} failed (${code}):\n${stderr}`))
        return
      }
      if (profile.length > 0) {
        writeFileSync(join(PROF_DIR as string, `${arm}-${n}.marks.json`), JSON.stringify(report.marksUs))
      }
      resolve({ ...report, spawnToAnswerMs: Number(answeredAt - start) / 1e6 - gapMs })
    })
  })
}

async function main(): Promise<void> {
  const out = mkdtempSync(join(tmpdir(), 'tenant-pools-cold-first-'))
  progress('starting an embedded PostgreSQL (TLS, SCRAM) and a local Secrets Manager')
  const server = await startEmbeddedPostgres({ database: 'tenant_pools_bench_cold', tls: true })
  const sm = await startLocalSecretsManager({ file: join(out, 'secrets.json') })
  // The stated delay, before each request reaches the local Secrets Manager.
  const target = new URL(sm.url)
  const delayed = createServer((req, res) => {
    setTimeout(() => {
      const upstream = request(
        { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 500, answer.headers)
          answer.pipe(res)
        },
      )
      req.pipe(upstream)
    }, SM_DELAY_MS)
  }).listen(0, '127.0.0.1')
  await new Promise((resolve) => delayed.once('listening', resolve))
  const smUrl = `http://127.0.0.1:${(delayed.address() as AddressInfo).port}`
  try {
    const admin = new URL(server.url)
    const dbUrl = `postgres://127.0.0.1:${admin.port}${admin.pathname}`
    progress('provisioning a tenant, its traffic login and its secret')
    // The embedded server asks for a cleartext password; RDS asks for SCRAM: so does this one.
    const hba = join(server.dataDir, 'pg_hba.conf')
    writeFileSync(hba, readFileSync(hba, 'utf8').replace(/\bpassword\b/g, 'scram-sha-256'))
    const owner = new Client({ connectionString: server.url })
    await owner.connect()
    await owner.query('SELECT pg_reload_conf()')
    await owner.query("SET password_encryption = 'scram-sha-256'")
    await owner.query("CREATE ROLE cold_traffic LOGIN PASSWORD 'cold-Traffic-1'")
    await owner.end()
    Object.assign(process.env, {
      DATABASE_URL: server.url,
      TENANT_POOLS_TRAFFIC_ROLE: 'cold_traffic',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
    })
    const { TenantPools } = await import('../lib')
    const { migrateMaster, provisionTenant } = await import('../functions/admin/provision')
    const pools = new TenantPools({ connectionString: server.url })
    await migrateMaster(pools)
    await provisionTenant(pools, TENANT)
    await pools.end()
    await new SecretsManagerClient({
      endpoint: sm.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    }).send(
      new CreateSecretCommand({
        Name: SECRET_ID,
        SecretString: JSON.stringify({
          engine: 'postgres',
          username: 'cold_traffic',
          password: 'cold-Traffic-1',
        }),
      }),
    )

    progress('packaging the functions (serverless package), bundling the bare handler')
    const { functions } = await packageFunctions(join(out, 'package'))
    const orders = functions.find((f) => f.handler === 'functions/http/orders/handlers.list')
    if (!orders) throw new Error('no packaged GET /orders handler (functions/http/orders/handlers.list)')
    const bare = join(out, 'bare.js')
    buildSync({
      stdin: { contents: bareSource, resolveDir: join(__dirname, '..'), loader: 'ts' },
      bundle: true,
      minify: true,
      platform: 'node',
      target: 'node22',
      format: 'cjs',
      external: ['pg-native', '@aws-sdk/*'],
      outfile: bare,
      logLevel: 'error',
    })

    // As Lambda gives it: the SDK from the runtime (here the project's, linked above both bundles:
    // the handlers import() it, which NODE_PATH does not serve), nothing else.
    mkdirSync(join(out, 'node_modules'))
    symlinkSync(join(__dirname, '..', 'node_modules', '@aws-sdk'), join(out, 'node_modules', '@aws-sdk'))
    const env = {
      PATH: process.env.PATH ?? '',
      DATABASE_URL: dbUrl,
      TENANT_POOLS_SSL_MODE: 'verify-full',
      TENANT_POOLS_SSL_CA_PATH: server.caPath as string,
      TENANT_POOLS_SECRET_ID: SECRET_ID,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: smUrl,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      POWERTOOLS_METRICS_DISABLED: 'true',
      AWS_LAMBDA_FUNCTION_NAME: 'tenant-pools-bench-cold',
    }
    const arms = {
      ours: () => runChild('ours', orders.bundlePath, 'list', env, 0),
      bare: () => runChild('bare', bare, 'list', env, 0),
      prewarm: () =>
        runChild('prewarm', orders.bundlePath, 'list', { ...env, TENANT_POOLS_PREWARM: 'true' }, GAP_MS),
    }
    const names = Object.keys(arms) as (keyof typeof arms)[]
    const samples: Record<keyof typeof arms, Sample[]> = { ours: [], bare: [], prewarm: [] }
    for (const name of names) await arms[name]() // warms the file cache
    for (let i = 0; i < RUNS; i++) {
      progress(`run ${i + 1} of ${RUNS}`)
      for (let k = 0; k < names.length; k++) {
        const name = names[(i + k) % names.length] as keyof typeof arms
        samples[name].push(await arms[name]())
      }
    }
    const row = (name: keyof typeof arms) => {
      const s = samples[name]
      const m = (k: Exclude<keyof Sample, 'parts' | 'marksUs'>) => +median(s.map((x) => x[k])).toFixed(1)
      const withParts = s.flatMap((x) => (x.parts ? [x.parts] : []))
      const part = (k: keyof Parts) =>
        withParts.length ? +median(withParts.map((x) => x[k])).toFixed(1) : undefined
      return {
        arm: name,
        spawnToAnswerMs: m('spawnToAnswerMs'),
        bootMs: m('bootMs'),
        initMs: m('initMs'),
        firstMs: m('firstMs'),
        warmMs: m('warmMs'),
        parts: {
          toSecretMs: part('toSecretMs'),
          secretMs: part('secretMs'),
          toConnectMs: part('toConnectMs'),
          connectToAnswerMs: part('connectToAnswerMs'),
        },
      }
    }
    const rows = names.map(row)
    const [ours, bareRow, prewarmed] = rows as [
      ReturnType<typeof row>,
      ReturnType<typeof row>,
      ReturnType<typeof row>,
    ]
    console.log(
      `bench:cold first answer, ${RUNS} alternated runs per arm, Secrets Manager delay ${SM_DELAY_MS} ms, prewarm gap ${GAP_MS} ms (medians)\n`,
    )
    console.log('| arm | spawn → first answer | boot | init | first invocation | warm invocation |')
    console.log('|---|---|---|---|---|---|')
    for (const r of rows) {
      console.log(
        `| ${r.arm} | ${r.spawnToAnswerMs} ms | ${r.bootMs} ms | ${r.initMs} ms | ${r.firstMs} ms | ${r.warmMs} ms |`,
      )
    }
    console.log('\nthe first invocation, in parts (medians; a prewarmed one read its secret during init):\n')
    console.log(
      '| arm | to the secret request (SDK load) | secret read | to the database socket | connect, statements, answer |',
    )
    console.log('|---|---|---|---|---|')
    const cell = (ms: number | undefined) => (ms === undefined ? '–' : `${ms} ms`)
    for (const r of rows) {
      const p = r.parts
      console.log(
        `| ${r.arm} | ${cell(p.toSecretMs)} | ${cell(p.secretMs)} | ${cell(p.toConnectMs)} | ${cell(p.connectToAnswerMs)} |`,
      )
    }
    const ratio = ours.spawnToAnswerMs / bareRow.spawnToAnswerMs
    const warmRatio = prewarmed.firstMs / prewarmed.warmMs
    const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED')
    console.log(`\ntargets:
  ours vs bare pg, spawn → first answer, no prewarm ≤ ${targets.firstAnswer}×: ${ratio.toFixed(2)}× ${verdict(ratio <= targets.firstAnswer)}
  with prewarm, first invocation ≤ ${targets.prewarmedFirst}× a warm one: ${warmRatio.toFixed(2)}× ${verdict(warmRatio <= targets.prewarmedFirst)}`)
    const results = join(__dirname, 'results')
    mkdirSync(results, { recursive: true })
    const file = join(results, `cold-first-answer-${new Date().toISOString().replaceAll(':', '-')}.json`)
    writeFileSync(
      file,
      JSON.stringify({ runs: RUNS, smDelayMs: SM_DELAY_MS, gapMs: GAP_MS, rows, samples }, null, 2),
    )
    console.log(`\nwritten to ${file}`)
  } finally {
    delayed.close()
    await sm.close()
    await server.stop()
  }
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
