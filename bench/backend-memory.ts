// A PostgreSQL backend's private memory, as bench:scale reads it: the `Anonymous:` line of
// /proc/<pid>/smaps_rollup (its heap and caches, not the shared buffers it maps). Only readable when
// the server runs on this machine, under a user whose /proc entries this process may read.
import { readFileSync } from 'node:fs'
import { Client } from 'pg'
import { summarize } from './timing'

/** The backend's private memory in kB, or undefined when this machine cannot read it. */
export function privateKb(pid: number): number | undefined {
  try {
    // A pid of a server elsewhere may name some other process here: read postgres processes only.
    if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('postgres')) return undefined
    const m = /^Anonymous:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))
    return m ? Number(m[1]) : undefined
  } catch {
    return undefined
  }
}

/** A fresh backend's private memory (kB, the median of `n`), after its first statement. */
export async function freshBackendKb(url: string, n = 5): Promise<number | undefined> {
  const kbs: number[] = []
  for (let i = 0; i < n; i++) {
    const c = new Client({ connectionString: url, application_name: 'bench-fresh' })
    await c.connect()
    try {
      const { rows } = await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
      const kb = privateKb(rows[0]?.pid ?? 0)
      if (kb !== undefined) kbs.push(kb)
    } finally {
      await c.end()
    }
  }
  return kbs.length ? summarize(kbs).median : undefined
}

/** The private memory (kB) of each backend whose application_name is LIKE `pattern`. */
export async function backendsKb(monitor: Client, pattern: string): Promise<number[]> {
  const { rows } = await monitor.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1',
    [pattern],
  )
  return rows.map((r) => privateKb(r.pid)).filter((kb): kb is number => kb !== undefined)
}
