// The `faithful` scenario of npm run bench:chaos (issue 27): freezes as Lambda makes them, each
// environment a worker in a network namespace whose link drops every packet both ways while frozen
// (test/support/netns-freeze.ts). For each freeze length it measures
//   - failures: backends terminated during the freeze, then one call of each kind at the thaw;
//     the caller-visible failures over CYCLES cycles;
//   - the first read after a thaw against a warm read, both timed inside the worker (`tookMs`), so
//     the pipe to it is not counted; medians and their ratio, against a target of 1.5×.
// Prints a table and writes bench/results/chaos-faithful-<timestamp>.json. Needs root, ip and tc;
// says why and returns where they are missing.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { sleep } from '../test/support/db'
import {
  type Call,
  type Environment,
  failureCodes,
  freezeCycle,
  type NetnsServer,
  netnsServer,
  nextId,
  startEnvironment,
} from '../test/support/netns-environment'
import { netnsUnavailable } from '../test/support/netns-freeze'
import type { WorkerReply } from '../test/support/netns-freeze-worker'

const FREEZES_MS = [100, 500, 2_500]
const CYCLES = 5
// Untimed: V8's memory reducer runs a GC at the first thaws of a fresh process.
const WARMUP_THAWS = 2
// Odd, so the median is one trial's figure.
const TRIALS = 9
// A warm read follows each thawed one after this pause: within validateAfterIdleMs (1 s), so it is
// the warm path, and past whatever the thaw left running (expired timers, the sweep).
const WARM_GAP_MS = 100
const TARGET_RATIO = 1.5

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}
const round = (ms: number) => Math.round(ms * 100) / 100

/** Failures per freeze length: backends terminated while frozen, one call of each kind at the thaw. */
async function failuresAfter(ns: NetnsServer, freezeMs: number) {
  const e = await startEnvironment(ns.server)
  const thawed: Call[] = []
  const warm: Call[] = []
  const left: number[] = []
  try {
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const during = async () => {
        await ns.terminate(e.prefix)
        left.push(await ns.backendsOf(e.prefix))
      }
      // As the test does: thawed with all five waiting, then with one at a time, in turn.
      const all = await freezeCycle(e, freezeMs, during, cycle % 2 === 0)
      // freezeCycle returns the five warming writes first, then the five calls at the thaw.
      warm.push(...all.slice(0, 5))
      thawed.push(...all.slice(5))
    }
  } finally {
    await e.end()
  }
  return {
    cycles: CYCLES,
    callsAtThaw: thawed.length,
    failuresAtThaw: failureCodes(thawed),
    failuresWarming: failureCodes(warm),
    backendsLeftAfterTerminate: left,
    workerStderr: e.stderr(),
  }
}

/** One read sent while `e` is frozen, answered after the thaw. */
async function readAtThaw(e: Environment, freezeMs: number): Promise<WorkerReply> {
  const pid = e.child.pid as number
  const frozenAt = Date.now()
  e.env.freeze(pid)
  await sleep(frozenAt + freezeMs - Date.now())
  const id = nextId()
  // Written while frozen: read at once on the thaw, as an invocation arriving with it.
  e.send({ id, tenant: e.tenant, via: 'read' })
  e.env.thaw(pid)
  return e.reply(id)
}

async function read(e: Environment): Promise<WorkerReply> {
  const id = nextId()
  e.send({ id, tenant: e.tenant, via: 'read' })
  return e.reply(id)
}

/** The first read after a thaw (nothing terminated) against a warm read, on one worker. */
async function firstReadAfter(ns: NetnsServer, freezeMs: number) {
  const e = await startEnvironment(ns.server)
  const thawMs: number[] = []
  const warmMs: number[] = []
  const failed: string[] = []
  const timed = (r: WorkerReply, into: number[]) => {
    if (r.ok && r.tookMs !== undefined) into.push(r.tookMs)
    else failed.push(`${r.code ?? '?'}${r.cause ? `/${r.cause}` : ''}`)
  }
  try {
    await read(e)
    for (let i = 0; i < WARMUP_THAWS; i++) {
      await readAtThaw(e, freezeMs)
      await sleep(WARM_GAP_MS)
    }
    for (let i = 0; i < TRIALS; i++) {
      timed(await readAtThaw(e, freezeMs), thawMs)
      await sleep(WARM_GAP_MS)
      timed(await read(e), warmMs)
      await sleep(WARM_GAP_MS)
    }
  } finally {
    await e.end()
  }
  const thawMedian = median(thawMs)
  const warmMedian = median(warmMs)
  return {
    trials: TRIALS,
    warmupThaws: WARMUP_THAWS,
    thawReadMs: thawMs.map(round),
    warmReadMs: warmMs.map(round),
    thawMedianMs: round(thawMedian),
    warmMedianMs: round(warmMedian),
    ratio: round(thawMedian / warmMedian),
    failed,
  }
}

/** Runs the scenario, prints its table and writes its results file; says why when it cannot run. */
export async function faithful(): Promise<void> {
  const unavailable = netnsUnavailable()
  if (unavailable) {
    console.log(`faithful scenario skipped: ${unavailable}`)
    return
  }
  const ns = await netnsServer()
  const results: Record<string, unknown>[] = []
  const rows: Record<string, Record<string, string | number>> = {}
  try {
    for (const freezeMs of FREEZES_MS) {
      const failures = await failuresAfter(ns, freezeMs)
      const latency = await firstReadAfter(ns, freezeMs)
      results.push({ freezeMs, failures, latency })
      const codes = failures.failuresAtThaw.join(' ')
      rows[`${freezeMs / 1000} s freeze`] = {
        [`failed at thaw (${CYCLES} cycles × 5 kinds)`]: `${failures.failuresAtThaw.length} / ${failures.callsAtThaw}${codes ? ` ${codes}` : ''}`,
        'failed warming': failures.failuresWarming.length,
        'first read after thaw, median (ms)': latency.thawMedianMs,
        'warm read, median (ms)': latency.warmMedianMs,
        [`ratio (target ≤ ${TARGET_RATIO}×)`]: `${latency.ratio}× ${latency.ratio <= TARGET_RATIO ? 'met' : 'NOT met'}`,
        'timed reads failed': latency.failed.length,
      }
    }
  } finally {
    await ns.quit()
  }
  console.log(
    `faithful: link dropped both ways while frozen; ${TRIALS} timed thaws after ${WARMUP_THAWS} untimed, worker-measured`,
  )
  console.table(rows)
  const at = new Date().toISOString()
  const dir = join(__dirname, 'results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `chaos-faithful-${at.replace(/[:.]/g, '-')}.json`)
  writeFileSync(
    file,
    `${JSON.stringify({ at, node: process.version, cycles: CYCLES, trials: TRIALS, targetRatio: TARGET_RATIO, results }, null, 2)}\n`,
  )
  console.log(`wrote ${file}`)
}
