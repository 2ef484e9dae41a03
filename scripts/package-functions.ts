// `serverless package` as the package test and `npm run bench:cold` run it: no AWS account, no
// network, a timeout (it hangs after an esbuild error instead of exiting), and each function's zip
// read back into a folder of its own.
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import JSZip from 'jszip'

const defaults = { timeoutMs: 150_000, stage: 'ci' }

export interface PackagedFunction {
  /** The logical name in serverless.yml (`ordersCreate`). */
  name: string
  /** `functions/http/orders/handlers.create` */
  handler: string
  zipPath: string
  zipBytes: number
  /** Every file in the zip, with its size. */
  files: Record<string, number>
  /** The handler's bundle, extracted to `<out>/extracted/<name>/`. */
  bundlePath: string
  bundleBytes: number
}

export interface Packaged {
  template: { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> }
  functions: PackagedFunction[]
}

export async function packageFunctions(
  out: string,
  options: Partial<typeof defaults> = {},
): Promise<Packaged> {
  const { timeoutMs, stage } = { ...defaults, ...options }
  const run = spawnSync(
    process.execPath,
    [require.resolve('serverless/bin/serverless.js'), 'package', '--stage', stage, '--package', out],
    {
      cwd: join(__dirname, '..'),
      encoding: 'utf8',
      timeout: timeoutMs,
      // No AWS credentials at all: packaging must not need them.
      env: { PATH: process.env.PATH, HOME: process.env.HOME, CI: 'true' },
    },
  )
  if (run.status !== 0)
    throw new Error(`serverless package failed (${run.status ?? run.signal}):\n${run.stdout}${run.stderr}`)
  const template = JSON.parse(readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8'))
  const state = JSON.parse(readFileSync(join(out, 'serverless-state.json'), 'utf8')) as {
    service: { functions: Record<string, { handler: string }> }
  }
  const functions: PackagedFunction[] = []
  for (const [name, fn] of Object.entries(state.service.functions)) {
    const zipPath = join(out, `${name}.zip`)
    const bytes = readFileSync(zipPath)
    const zip = await JSZip.loadAsync(bytes)
    const files: Record<string, number> = {}
    const dir = join(out, 'extracted', name)
    for (const entry of Object.values(zip.files)) {
      if (entry.dir) continue
      const content = await entry.async('nodebuffer')
      files[entry.name] = content.length
      mkdirSync(dirname(join(dir, entry.name)), { recursive: true })
      writeFileSync(join(dir, entry.name), content)
    }
    const bundle = `${fn.handler.slice(0, fn.handler.lastIndexOf('.'))}.js`
    functions.push({
      name,
      handler: fn.handler,
      zipPath,
      zipBytes: bytes.length,
      files,
      bundlePath: join(dir, bundle),
      bundleBytes: files[bundle] ?? 0,
    })
  }
  return { template, functions }
}
