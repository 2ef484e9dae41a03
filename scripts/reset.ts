// npm run reset: wipes the local stack's data (its PostgreSQL data, secrets, admin key and token
// key), so that the next npm start begins afresh. It stops nothing: while the stack runs on this
// folder it refuses, and says so.
import { existsSync, rmSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
// @ts-expect-error: an ESM helper without type declarations, shared with the jest setup
import { dataDirPlaces } from './embedded-postgres.mjs'
import { localConfig as config, livePid, lockFile } from './local-config'

function main(): number {
  // As root, a data folder may live under the system temp folder instead (reachableDataDir).
  const dataDirs = ['pg', 'pg-b'].flatMap((folder) => dataDirPlaces(join(config.dir, folder)) as string[])
  const running = livePid(lockFile())
  const postmaster = dataDirs
    .map((dir) => ({ dir, pid: livePid(join(dir, 'postmaster.pid')) }))
    .find((p) => p.pid)
  if (running || postmaster) {
    const who = running
      ? `npm start (pid ${running})`
      : `PostgreSQL (pid ${postmaster?.pid}, on ${postmaster?.dir})`
    process.stderr.write(`[reset] refused: ${who} is running on ${config.dir}. Stop it (Ctrl-C) first.\n`)
    return 1
  }
  // A data folder kept elsewhere goes with the folder made to hold it.
  const folders = dataDirs.map((dir) =>
    basename(dirname(dir)).startsWith('tenant-pools-data-') ? dirname(dir) : dir,
  )
  const wiped = [config.dir, ...folders].filter((dir) => existsSync(dir))
  for (const dir of wiped) rmSync(dir, { recursive: true, force: true })
  process.stdout.write(
    wiped.length ? `[reset] removed ${wiped.join(', ')}\n` : `[reset] nothing to remove for ${config.dir}\n`,
  )
  return 0
}

process.exitCode = main()
