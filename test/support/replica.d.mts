// Types of replica.mjs, for the TypeScript tests that import it.
export interface Replica {
  url: string
  port: number
  dataDir: string
  start(): Promise<unknown>
  stop(): Promise<void>
  /** Stops it, drops its slot on the primary and deletes its copy. */
  remove(): Promise<void>
}

export function startReplica(primary: { url: string; port: number; dataDir: string }): Promise<Replica>
