// Modules of the project as deployed, for a plain `node --import tsx` script: one CommonJS bundle
// (middy 7 is ESM-only, which Node 20's require cannot load from the sources), so that handlers and
// the registry they use come from the same module instance.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from 'esbuild'

/**
 * Bundles `exports` (export statements, paths from the repository's root) and loads the bundle;
 * call it once the functions' environment is set.
 */
export async function bundled<T>(exports: string[]): Promise<T> {
  const outfile = join(mkdtempSync(join(tmpdir(), 'tenant-pools-bench-')), 'bundle.cjs')
  await build({
    stdin: { contents: exports.join('\n'), resolveDir: join(__dirname, '..'), loader: 'ts' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    outfile,
    logLevel: 'error',
  })
  return require(outfile)
}
