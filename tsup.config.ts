// `npm run build`: the published package (dist/, git-ignored), with types for each format (.d.mts
// beside the ESM, .d.ts beside the CommonJS). The script empties dist/ first, not tsup's `clean`: the
// two builds below run side by side, and one's cleaning would race the other's output. Dependencies
// and peers stay external: tsup leaves out every package named in package.json.
import { defineConfig, type Options } from 'tsup'

const entry = {
  index: 'lib/index.ts',
  middy: 'lib/middy/index.ts',
  'pg-pool': 'lib/adapters/pg-pool.ts',
}

const common: Options = {
  sourcemap: true,
  // Lambda's nodejs22.x, and the engines field.
  target: 'node22',
  outDir: 'dist',
}

export default defineConfig([
  // ESM: one module per entry and shared chunks, so each class (the errors, TenantPgPool) exists once
  // whichever entries a program imports, and `instanceof` holds across `tenant-pools` and its subpaths.
  { ...common, entry, format: 'esm', splitting: true, dts: true },
  // CommonJS: one bundle, index.js, which package.json's `require` conditions name for every subpath
  // (each subpath's .d.ts declares its part). Not split: tsup's CommonJS chunks run
  // `export * from 'zod/mini'` before zod is required (zod_exports.string is not a function).
  { ...common, entry: { index: entry.index }, format: 'cjs', dts: { entry } },
])
