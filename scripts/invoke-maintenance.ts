// npm run job:maintenance: runs the maintenance job once against the local stack (`npm start` must be
// running), through serverless-offline's Lambda endpoint, and prints its summary.
const port = Number(process.env.TENANT_POOLS_LOCAL_LAMBDA_PORT ?? 3002)
const url = `http://127.0.0.1:${port}/2015-03-31/functions/tenant-pools-local-maintenance/invocations`

async function main(): Promise<void> {
  const res = await fetch(url, { method: 'POST', body: '{}' }).catch((err: unknown) => {
    throw new Error(`Nothing answers on ${url}: is npm start running?`, { cause: err })
  })
  const text = await res.text()
  process.stdout.write(`${text}\n`)
  if (!res.ok || res.headers.get('x-amz-function-error')) process.exitCode = 1
}

main().catch((err: Error) => {
  process.stderr.write(`${err.message}\n`)
  process.exitCode = 1
})
