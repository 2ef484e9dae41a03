export default async function globalTeardown() {
  // The replica first: it is removed before its primary stops.
  for (const server of globalThis.__TENANT_POOLS_SERVERS__ ?? []) await server.stop()
}
