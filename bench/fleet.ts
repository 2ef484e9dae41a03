// npm run bench:fleet: a simulated Lambda fleet against one PostgreSQL with max_connections 100.
// Four connection designs, run one after the other on the same server: ours; the tutorial design
// (a pool per tenant, max 20 min 5, no budget); one pg.Pool per environment with SET search_path;
// a new connection per request; and ours again with half the tenants on a second server (cluster b,
// capped per environment), whose connections are counted per server. ENVIRONMENTS processes each serve bursts of Zipf-distributed
// tenants and are frozen (SIGSTOP) between bursts, as Lambda does. Prints a table and writes JSON and
// an SVG chart of server connections over time under bench/results/.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Client } from 'pg'
// @ts-expect-error: an ESM helper without type declarations, shared with the jest setup
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.mjs'
import { progress } from './progress'
import { zipfTenants } from './zipf'

const DESIGNS = ['ours', 'tutorial', 'single-pool', 'per-request', 'ours-two-clusters'] as const
// As bench/fleet-env.ts: cluster b's cap per environment.
const CLUSTER_B_CAP = 2
const ENVIRONMENTS = 10
const TENANTS = 200
const ROUNDS = 40
const BURST = 5
const FREEZE_MS = 150
const LINGER_CAP_MS = 35_000
const SAMPLE_MS = 100

const zipf = zipfTenants(TENANTS, 't')

interface Env {
  child: ChildProcessWithoutNullStreams
  next: () => Promise<{ latencies: number[]; errors: Record<string, number> }>
}

function startEnv(design: string, url: string, prefix: string, urlB: string): Env {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/fleet-env.ts', design, url, prefix, urlB])
  const queue: Array<(v: { latencies: number[]; errors: Record<string, number> }) => void> = []
  createInterface({ input: child.stdout }).on('line', (line) => queue.shift()?.(JSON.parse(line)))
  return { child, next: () => new Promise((resolve) => queue.push(resolve)) }
}

const percentile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN
}

async function main(): Promise<void> {
  progress('starting two embedded PostgreSQL servers')
  const server = await startEmbeddedPostgres({ database: 'fleet', flags: ['max_connections=100'] })
  const serverB = await startEmbeddedPostgres({ database: 'fleet', flags: ['max_connections=100'] })
  const admin = new Client({ connectionString: server.url })
  const adminB = new Client({ connectionString: serverB.url })
  await admin.connect()
  await adminB.connect()
  const countOn = async (c: Client, prefix: string) =>
    Number(
      (
        await c.query<{ n: string }>(
          'SELECT count(*) AS n FROM pg_stat_activity WHERE application_name LIKE $1',
          [`${prefix}:%`],
        )
      ).rows[0]?.n,
    )
  // Connections on cluster b, sampled with the total.
  let onB = 0
  const count = async (prefix: string) => {
    const [a, b] = await Promise.all([countOn(admin, prefix), countOn(adminB, prefix)])
    onB = b
    return a + b
  }
  const results: Record<string, unknown>[] = []
  const series: Record<string, Array<[number, number]>> = {}
  try {
    for (const design of DESIGNS) {
      progress(`design ${design}: ${ENVIRONMENTS} environments`)
      const prefix = `fleet-${design}`
      const envs = Array.from({ length: ENVIRONMENTS }, () =>
        startEnv(design, server.url, prefix, serverB.url),
      )
      await new Promise((r) => setTimeout(r, 1_500)) // let the environments load
      const points: Array<[number, number]> = []
      let peakB = 0
      const started = Date.now()
      let sampling = true
      const sampler = (async () => {
        while (sampling) {
          points.push([Date.now() - started, await count(prefix)])
          peakB = Math.max(peakB, onB)
          await new Promise((r) => setTimeout(r, SAMPLE_MS))
        }
      })()
      const latencies: number[] = []
      const errors: Record<string, number> = {}
      for (let round = 0; round < ROUNDS; round++) {
        const answers = envs.map((e) => e.next())
        for (const e of envs) e.child.stdin.write(`${JSON.stringify(Array.from({ length: BURST }, zipf))}\n`)
        for (const a of await Promise.all(answers)) {
          latencies.push(...a.latencies)
          for (const [k, v] of Object.entries(a.errors)) errors[k] = (errors[k] ?? 0) + v
        }
        for (const e of envs) e.child.kill('SIGSTOP')
        await new Promise((r) => setTimeout(r, FREEZE_MS))
        for (const e of envs) e.child.kill('SIGCONT')
      }
      // Traffic stops; the environments stay frozen, as idle Lambdas do. How long do connections linger?
      const trafficEndedAt = Date.now() - started
      for (const e of envs) e.child.kill('SIGSTOP')
      let lingerMs: number | null = null
      while (Date.now() - started - trafficEndedAt < LINGER_CAP_MS) {
        if ((await count(prefix)) === 0) {
          lingerMs = Date.now() - started - trafficEndedAt
          break
        }
        await new Promise((r) => setTimeout(r, 250))
      }
      sampling = false
      await sampler
      for (const e of envs) {
        e.child.kill('SIGCONT')
        e.child.kill('SIGTERM')
      }
      for (const c of [admin, adminB]) {
        await c.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1`,
          [`${prefix}:%`],
        )
      }
      const during = points.filter(([t]) => t <= trafficEndedAt).map(([, n]) => n)
      series[design] = points
      results.push({
        design,
        peakConnections: Math.max(...points.map(([, n]) => n)),
        steadyConnections: percentile(during, 0.5),
        requests: latencies.length + Object.values(errors).reduce((a, b) => a + b, 0),
        failed: errors,
        p50ms: +percentile(latencies, 0.5).toFixed(2),
        p99ms: +percentile(latencies, 0.99).toFixed(2),
        lingerAfterTrafficMs: lingerMs ?? `> ${LINGER_CAP_MS}`,
        // Of the peak, on cluster b; its bound is the cap times the environments.
        peakOnClusterB:
          design === 'ours-two-clusters' ? `${peakB} (cap ${CLUSTER_B_CAP * ENVIRONMENTS})` : '',
      })
    }
  } finally {
    await admin.end()
    await adminB.end()
    await server.stop()
    await serverB.stop()
  }
  console.table(results.map((r) => ({ ...r, failed: JSON.stringify(r.failed) })))
  const dir = join(__dirname, 'results')
  mkdirSync(dir, { recursive: true })
  writeFileSync(
    join(dir, 'fleet.json'),
    `${JSON.stringify({ at: new Date().toISOString(), results, series }, null, 2)}\n`,
  )
  writeFileSync(join(dir, 'fleet.svg'), chart(series))
  console.log(`wrote ${join(dir, 'fleet.json')} and ${join(dir, 'fleet.svg')}`)
}

/** Server connections over time, one line per design. */
function chart(series: Record<string, Array<[number, number]>>): string {
  const W = 760
  const H = 360
  const pad = 40
  const maxT = Math.max(...Object.values(series).flatMap((p) => p.map(([t]) => t)), 1)
  const maxN = Math.max(100, ...Object.values(series).flatMap((p) => p.map(([, n]) => n)))
  const colors = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a']
  const x = (t: number) => pad + (t / maxT) * (W - 2 * pad)
  const y = (n: number) => H - pad - (n / maxN) * (H - 2 * pad)
  const lines = Object.entries(series).map(([name, points], i) => {
    const d = points.map(([t, n]) => `${x(t).toFixed(1)},${y(n).toFixed(1)}`).join(' ')
    return `<polyline fill="none" stroke="${colors[i]}" stroke-width="2" points="${d}"/>
<text x="${W - pad - 150}" y="${pad + 16 * i}" fill="${colors[i]}" font-size="13">${name}</text>`
  })
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<line x1="${pad}" y1="${y(100)}" x2="${W - pad}" y2="${y(100)}" stroke="#999" stroke-dasharray="4"/>
<text x="${pad + 4}" y="${y(100) - 4}" font-size="11" fill="#666">max_connections 100</text>
<line x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}" stroke="black"/>
<line x1="${pad}" y1="${pad}" x2="${pad}" y2="${H - pad}" stroke="black"/>
<text x="${W / 2}" y="${H - 8}" font-size="12" text-anchor="middle">seconds (traffic, then frozen)</text>
<text x="12" y="${H / 2}" font-size="12" transform="rotate(-90 12 ${H / 2})" text-anchor="middle">server connections</text>
<text x="${W - pad}" y="${H - pad + 14}" font-size="11" text-anchor="end">${(maxT / 1000).toFixed(0)} s</text>
<text x="${pad - 4}" y="${pad}" font-size="11" text-anchor="end">${maxN}</text>
${lines.join('\n')}
</svg>
`
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
