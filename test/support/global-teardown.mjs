export default async function globalTeardown() {
  const server = globalThis.__TENANT_POOLS_PG__
  if (server) await server.stop()
}
