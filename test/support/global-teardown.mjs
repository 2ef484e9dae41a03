import { createRequire } from 'node:module'

const { sweepReplicas } = createRequire(import.meta.url)('./replica-sweep.cjs')

export default async function globalTeardown() {
  // The replica first: it is removed before its primary stops.
  for (const server of globalThis.__TENANT_POOLS_SERVERS__ ?? []) await server.stop()
  // Replicas of test processes that died before removing them (a crash, a killed run).
  sweepReplicas()
}
