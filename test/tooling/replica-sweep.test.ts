// The sweep of leftover replicas (test/support/replica-sweep.cjs) signals only a postgres running on
// the replica's own folder. A replica is made by copying its primary's data folder, postmaster.pid
// included, so a maker killed mid-copy leaves the primary's pid behind; a stale pid may also belong
// to another process by now. Either way the sweep must remove the folder and signal no one.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const { sweepReplicas } = require('../support/replica-sweep.cjs') as { sweepReplicas: () => number }

const children: ChildProcess[] = []
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL')
})

// A process that merely lives: the one a wrong pid would hit.
const bystander = () => {
  const child = spawn('sleep', ['60'])
  children.push(child)
  return child
}

// The pid of a process that has exited: the maker the sweep finds gone.
const deadPid = async () => {
  const child = spawn('true')
  await once(child, 'exit')
  return child.pid as number
}

const leftover = async (postmasterPid: (dataDir: string) => string) => {
  const dir = mkdtempSync(join(tmpdir(), 'tenant-pools-replica-'))
  writeFileSync(join(dir, 'owner.pid'), String(await deadPid()))
  mkdirSync(join(dir, 'data'))
  writeFileSync(join(dir, 'data', 'postmaster.pid'), postmasterPid(join(dir, 'data')))
  return dir
}

describe('Test support: sweepReplicas', () => {
  it.each([
    ["the primary's, copied with its data folder", (pid: number) => () => `${pid}\n/tmp/the-primary/data\n`],
    ['stale, now the pid of another process', (pid: number) => (dataDir: string) => `${pid}\n${dataDir}\n`],
  ])('removes a dead maker’s replica whose postmaster.pid is %s, and signals no one', async (_, content) => {
    const victim = bystander()
    const exited = once(victim, 'exit')
    const dir = await leftover(content(victim.pid as number))

    expect(sweepReplicas()).toBeGreaterThanOrEqual(1)

    expect(existsSync(dir)).toBe(false)
    const outcome = await Promise.race([
      exited.then(() => 'killed'),
      new Promise((r) => setTimeout(r, 200, 'alive')),
    ])
    expect(outcome).toBe('alive')
  })
})
