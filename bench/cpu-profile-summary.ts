// Where the CPU profiles of `BENCH_CPU_PROF_DIR=… npm run bench:cold` went, one arm and one part at a
// time: node --import tsx bench/cpu-profile-summary.ts <dir> <ours|bare|prewarm> <init|gap|first|all>.
// Each profile is cut at the marks its child reported (init, the first invocation), and the time is
// summed per bundled package or source folder, read through the bundle's source map (Node's own
// SourceMap, no dependency): the packaged bundles are minified, their names tell nothing. Means over
// the arm's profiles, in milliseconds of samples (the profiler's cost included).
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  startTime: number
  samples: number[]
  timeDeltas: number[]
}

const [dir, arm, part = 'all', top = '25'] = process.argv.slice(2)
if (!dir || !arm) {
  console.error('usage: bench/cpu-profile-summary.ts <dir> <arm> [init|gap|first|all] [rows]')
  process.exit(2)
}

const maps = new Map<string, SourceMap | undefined>()
const mapOf = (url: string): SourceMap | undefined => {
  if (!url.startsWith('file://') && !url.startsWith('/')) return undefined
  const file = url.startsWith('file://') ? fileURLToPath(url) : url
  if (!maps.has(file)) {
    maps.set(
      file,
      existsSync(`${file}.map`) ? new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8'))) : undefined,
    )
  }
  return maps.get(file)
}

// A frame's place: its package (node_modules) or source folder (lib/pool …), else Node's own module.
const placeOf = (frame: ProfileNode['callFrame']): { place: string; name: string } => {
  const found = mapOf(frame.url)?.findEntry(frame.lineNumber, frame.columnNumber)
  const entry = found && 'originalSource' in found ? found : undefined
  const source = entry?.originalSource
  if (entry && source) {
    const path = source.replace(/^.*?node_modules\//, 'node_modules/').replace(/^(\.\.\/)+/, '')
    const pkg = path.match(/^node_modules\/((?:@[^/]+\/)?[^/]+)/)?.[1]
    const place = pkg ?? path.replace(/^((?:lib|functions)\/[^/]+)\/.*/, '$1')
    const fn = (entry as { name?: string }).name ?? (frame.functionName || '(top level)')
    return { place, name: `${fn} ${path}:${entry.originalLine + 1}` }
  }
  const own = frame.url.replace(/.*\//, '') || frame.functionName
  return {
    place: own,
    name: frame.functionName === own ? own : `${frame.functionName || '(anonymous)'} ${own}`,
  }
}

const self = new Map<string, number>()
const inclusive = new Map<string, number>()
const add = (m: Map<string, number>, k: string, ms: number) => m.set(k, (m.get(k) ?? 0) + ms)
const files = readdirSync(dir).filter((f) => f.startsWith(`${arm}-`) && f.endsWith('.cpuprofile'))
let sampled = 0
for (const file of files) {
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile
  const marks = JSON.parse(readFileSync(join(dir, file.replace('.cpuprofile', '.marks.json')), 'utf8'))
  const windows: Record<string, [number, number]> = {
    init: [marks[0], marks[1]],
    gap: [marks[1], marks[2]],
    first: [marks[2], marks[3]],
    all: [Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY],
  }
  const [from, to] = windows[part] ?? (windows.all as [number, number])
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const places = new Map<number, { place: string; name: string }>()
  const at = (id: number) => {
    let p = places.get(id)
    if (!p) {
      p = placeOf((nodes.get(id) as ProfileNode).callFrame)
      places.set(id, p)
    }
    return p
  }
  let t = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] as number
    if (t < from || t > to) continue
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000 / files.length
    sampled += ms
    const leaf = profile.samples[i] as number
    add(self, at(leaf).place, ms)
    // Each place once per sample, however often it recurs on the stack.
    const seen = new Set<string>()
    for (let id: number | undefined = leaf; id !== undefined; id = parent.get(id)) {
      const { place, name } = at(id)
      for (const k of [place, name]) {
        if (!seen.has(k)) add(inclusive, k, ms)
        seen.add(k)
      }
    }
  }
}

const rows = (m: Map<string, number>, n: number) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, ms]) => `${ms.toFixed(2).padStart(8)} ms  ${k}`)
    .join('\n')
console.log(`${arm}, ${part}: ${files.length} profiles, ${sampled.toFixed(1)} ms sampled on average`)
console.log(`\nself time by place:\n${rows(self, 15)}`)
console.log(`\ninclusive (places and functions):\n${rows(inclusive, Number(top))}`)
