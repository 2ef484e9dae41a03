// A frozen Lambda environment as it really is: the whole microVM pauses, so what the server sends
// meanwhile (a terminated backend's FATAL and FIN) is lost, not kept in the environment's socket
// for the thaw to find. SIGSTOP alone keeps it: the kernel still receives. Here the environment is a
// process in a network namespace of its own, joined to the host by a veth pair; a freeze drops every
// packet on that link in both directions, then stops the process.
//
// The loss, without netem or gact (this kernel has neither): a clsact qdisc on each end of the link
// stays for the environment's life, and a freeze adds an egress filter to both,
//   tc filter add dev <end> egress protocol all pref 1 u32 match u32 0 0 action mirred egress redirect dev <sink>
// where <sink> is one end of a second veth pair whose other end is up in the namespace with no
// address. The redirected frames keep the link's destination MAC, so the sink's peer takes them for
// another host's and discards them. The sender sees a packet sent (mirred to a device that is up),
// as with a packet lost on the wire, and its TCP retransmits on its timers. `tc filter del` thaws.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'

const PREFIX = 'tpz'

const run = (cmd: string, args: string[]): string =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })

const tryRun = (cmd: string, args: string[]): void => {
  try {
    run(cmd, args)
  } catch {
    // cleanup: already gone
  }
}

/** Why the harness cannot run here, or undefined when it can (root, ip and tc). */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux network namespaces'
  if (process.getuid?.() !== 0) return 'needs root, ip and tc: not root'
  try {
    run('ip', ['-V'])
    run('tc', ['-V'])
  } catch {
    return 'needs root, ip and tc: ip or tc missing'
  }
  return undefined
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM'
  }
}

/** The pids in namespace `ns` (ip netns pids). */
const pidsIn = (ns: string): number[] => {
  try {
    return run('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/**
 * Removes namespaces this harness left behind when its process died (named tpz-<pid>-<n>, the pid
 * gone): their workers (stopped, they would never exit) are killed, and deleting the namespace
 * takes its veth pairs with it, since every pair has one end inside.
 */
export function sweepStaleNamespaces(): void {
  let names: string[] = []
  try {
    names = run('ip', ['netns', 'list']).split('\n')
  } catch {
    return
  }
  for (const name of names.map((l) => l.split(' ')[0] ?? '')) {
    const owner = /^tpz-(\d+)-\d+$/.exec(name)?.[1]
    if (!owner || alive(Number(owner))) continue
    for (const pid of pidsIn(name)) tryRun('kill', ['-KILL', String(pid)])
    tryRun('ip', ['netns', 'del', name])
  }
  // A deleted namespace lives on, unnamed, while a socket in it does: the killed worker's, sending
  // its FIN into a link that may still drop everything, for minutes. Its links are deleted now.
  const named = new Set<string>()
  try {
    for (const m of run('ip', ['netns', 'list']).matchAll(/\(id: (\d+)\)/g)) named.add(m[1] as string)
    for (const line of run('ip', ['-o', '-d', 'link', 'show']).split('\n')) {
      const m = /^\d+: (tpz[0-9a-f]{6}hs?)@\S+ .* link-netnsid (\d+)/.exec(line)
      if (m && !named.has(m[2] as string)) tryRun('ip', ['link', 'del', m[1] as string])
    }
  } catch {
    // nothing to list
  }
}

/** A free /30 in 10.231.0.0/16: the host's end takes .1 of it, the namespace's .2. */
function freeSubnet(): { host: string; inside: string } {
  const used = run('ip', ['-o', '-4', 'addr', 'show'])
  for (;;) {
    const [a = 0, b = 0] = randomBytes(2)
    const base = `10.231.${a}.`
    const quad = b & 0xfc
    if (!used.includes(` ${base}${quad + 1}/`))
      return { host: `${base}${quad + 1}`, inside: `${base}${quad + 2}` }
  }
}

export interface NetnsEnvironment {
  /** The namespace's name, for `ip netns exec`. */
  ns: string
  /** The host's address on the link: where a server listening on it is reached from inside. */
  hostAddress: string
  /** The namespace's address. */
  insideAddress: string
  /** Argv that runs `command` inside the namespace. */
  exec(command: string[]): string[]
  /** Drops everything on the link both ways, then stops `pid`. */
  freeze(pid: number): void
  /** Resumes the link, then `pid` (see thaw's comment). */
  thaw(pid: number): void
  readonly frozen: boolean
  /** Kills `pids` (ours, run inside) and deletes the namespace, its links and qdiscs. Idempotent. */
  remove(pids?: number[]): void
}

let made = 0
const live = new Set<NetnsEnvironment>()

// A crashed test leaves no namespace behind where it can help it: a worker stopped inside would
// never exit. (A SIGKILLed jest worker is swept by the next run.)
process.once('exit', () => {
  for (const env of live) env.remove()
})

/** A namespace joined to the host by a link that freeze() cuts. Call sweepStaleNamespaces() first. */
export function createNetnsEnvironment(): NetnsEnvironment {
  const ns = `${PREFIX}-${process.pid}-${made++}`
  const tag = `${PREFIX}${randomBytes(3).toString('hex')}`
  // Interface names: at most 15 characters.
  const hostEnd = `${tag}h`
  const insideEnd = `${tag}n`
  const hostSink = `${tag}hs`
  const insideSink = `${tag}ns`
  const { host, inside } = freeSubnet()
  const inNs = (args: string[]) => run('ip', ['-n', ns, ...args])
  const steps: [string, string[]][] = [
    ['ip', ['netns', 'add', ns]],
    ['ip', ['link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', insideEnd, 'netns', ns]],
    ['ip', ['addr', 'add', `${host}/30`, 'dev', hostEnd]],
    ['ip', ['link', 'set', hostEnd, 'up']],
    ['ip', ['-n', ns, 'addr', 'add', `${inside}/30`, 'dev', insideEnd]],
    ['ip', ['-n', ns, 'link', 'set', insideEnd, 'up']],
    ['ip', ['-n', ns, 'link', 'set', 'lo', 'up']],
    // The sinks: each pair's far end is up inside, without an address, and discards what it gets.
    ['ip', ['link', 'add', hostSink, 'type', 'veth', 'peer', 'name', `${tag}hp`, 'netns', ns]],
    ['ip', ['link', 'set', hostSink, 'up']],
    ['ip', ['-n', ns, 'link', 'set', `${tag}hp`, 'up']],
    ['ip', ['-n', ns, 'link', 'add', insideSink, 'type', 'veth', 'peer', 'name', `${tag}np`]],
    ['ip', ['-n', ns, 'link', 'set', insideSink, 'up']],
    ['ip', ['-n', ns, 'link', 'set', `${tag}np`, 'up']],
    ['tc', ['qdisc', 'add', 'dev', hostEnd, 'clsact']],
    ['tc', ['-n', ns, 'qdisc', 'add', 'dev', insideEnd, 'clsact']],
  ]
  let frozen = false
  let removed = false
  const filter = (op: 'add' | 'del', end: string, sink: string, nsArgs: string[]) => {
    const args = [...nsArgs, 'filter', op, 'dev', end, 'egress', 'protocol', 'all', 'pref', '1']
    run('tc', op === 'add' ? [...args, 'u32', 'match', 'u32', '0', '0', ...redirect(sink)] : args)
  }
  const redirect = (sink: string) => ['action', 'mirred', 'egress', 'redirect', 'dev', sink]
  const env: NetnsEnvironment = {
    ns,
    hostAddress: host,
    insideAddress: inside,
    exec: (command) => ['ip', 'netns', 'exec', ns, ...command],
    freeze(pid) {
      if (frozen) throw new Error(`${ns} is frozen already`)
      frozen = true
      filter('add', hostEnd, hostSink, [])
      filter('add', insideEnd, insideSink, ['-n', ns])
      process.kill(pid, 'SIGSTOP')
    },
    thaw(pid) {
      if (!frozen) throw new Error(`${ns} is not frozen`)
      frozen = false
      // The link first: at a real thaw the guest's kernel and NIC resume with the process, so the
      // process's first packet must not be lost (it would wait out a retransmission the real thing
      // never does). What arrives in the milliseconds before SIGCONT is what a resuming VM's kernel
      // takes in before its process runs; nothing sent during the freeze is delivered.
      filter('del', hostEnd, hostSink, [])
      filter('del', insideEnd, insideSink, ['-n', ns])
      process.kill(pid, 'SIGCONT')
    },
    get frozen() {
      return frozen
    },
    remove(pids = []) {
      if (removed) return
      removed = true
      live.delete(env)
      for (const pid of [...pids, ...pidsIn(ns)]) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          // exited already
        }
      }
      // The host's ends go with their peers inside the namespace; deleted too in case one lingers.
      tryRun('ip', ['netns', 'del', ns])
      tryRun('ip', ['link', 'del', hostEnd])
      tryRun('ip', ['link', 'del', hostSink])
    },
  }
  live.add(env)
  try {
    for (const [cmd, args] of steps) run(cmd, args)
    inNs(['route', 'replace', 'default', 'via', host, 'dev', insideEnd])
  } catch (err) {
    env.remove()
    throw err
  }
  return env
}
