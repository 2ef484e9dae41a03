// Types of pgbouncer.mjs, for the TypeScript tests that import it.
export interface PgBouncer {
  port: number
  /** Rewrites auth_file and reloads: how a rotated password reaches PgBouncer. */
  setUsers(users: Array<{ name: string; password: string }>): void
  stop(): Promise<void>
}

export function pgbouncerBinary(): string | undefined

export function startPgBouncer(options: {
  targetPort: number
  users: Array<{ name: string; password: string }>
  poolSize?: number
}): Promise<PgBouncer>
