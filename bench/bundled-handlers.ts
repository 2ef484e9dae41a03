// The orders handlers as deployed, for a plain `node --import tsx` script: one CommonJS bundle
// (middy 7 is ESM-only, which Node 20's require cannot load from the sources), with the registry's
// reset from the same module instance. bench/chaos.ts bundles the same way.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from 'esbuild'
import type { BusyModules } from '../test/support/busy-move'

/** Bundles and loads the `create` handler; call it once the functions' environment is set. */
export async function bundledHandlers(): Promise<BusyModules> {
  const outfile = join(mkdtempSync(join(tmpdir(), 'tenant-pools-bench-')), 'handlers.cjs')
  await build({
    stdin: {
      contents: [
        "export { create } from './functions/http/orders/handlers'",
        "export { resetTenantPools } from './lib'",
      ].join('\n'),
      resolveDir: join(__dirname, '..'),
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    outfile,
    logLevel: 'error',
  })
  return require(outfile)
}
